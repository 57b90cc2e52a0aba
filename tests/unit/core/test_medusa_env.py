"""Medusa's environment: the names the program sets are exactly PROGRAM_ENV, and a user's extra
env can never replace one of them."""

import json

import pytest

from core.medusa_env import PROGRAM_ENV, MedusaEnvInput, MedusaSecrets, plain_env, secret_env
from core.settings import KNOWN_KEYS, SettingsError, load_settings
from tests.unit.configs import config

EVERYTHING_ON = MedusaEnvInput(
    color="green",
    public_url="https://api.shop.example.com",
    backend_url=None,
    storefront_url="https://shop.example.com",
    store_cors=["https://shop.example.com"],
    admin_cors=[],
    auth_cors=[],
    extra_env={},
    database_driver_options={"connection": {"ssl": False}},
    meilisearch_enabled=True,
    s3={"bucket": "b", "region": "r", "endpoint": "https://s3.example.com", "file_url": "https://cdn.example.com"},
)
ALL_SECRETS = MedusaSecrets(
    database_url="postgres://u:p@postgres/db", redis_url="redis://default:p@redis:6379/0", jwt_secret="j",
    cookie_secret="c", meilisearch_key="m", stripe_api_key="s", resend_api_key="r", s3_access_key_id="a",
    s3_secret_access_key="k",
)


def test_the_program_sets_exactly_the_names_settings_refuses() -> None:
    # If a new env name is set without being listed, settings would let a user override it.
    names = set(plain_env(EVERYTHING_ON, "server")) | set(secret_env(ALL_SECRETS))
    assert names == set(PROGRAM_ENV)


def test_every_owning_setting_is_a_real_config_key() -> None:
    for name, owner in PROGRAM_ENV.items():
        if owner is not None:
            assert owner.split(".")[0] in KNOWN_KEYS, (name, owner)


def test_extra_env_never_replaces_a_program_name() -> None:
    spec = EVERYTHING_ON.__class__(**{**EVERYTHING_ON.__dict__, "extra_env": {"S3_BUCKET": "x", "SHOP_MODE": "y"}})
    env = plain_env(spec, "server")
    assert env["S3_BUCKET"] == "b" and env["SHOP_MODE"] == "y"
    secrets = secret_env(MedusaSecrets(**{**ALL_SECRETS.__dict__, "extra": {"STRIPE_API_KEY": "x", "SHOP_KEY": "y"}}))
    assert secrets["STRIPE_API_KEY"] == "s" and secrets["SHOP_KEY"] == "y"


def test_worker_never_serves_the_admin() -> None:
    assert plain_env(EVERYTHING_ON, "worker")["DISABLE_MEDUSA_ADMIN"] == "true"
    assert plain_env(EVERYTHING_ON, "server")["DISABLE_MEDUSA_ADMIN"] == "false"


def test_settings_refuse_every_program_name_in_both_env_maps() -> None:
    for name in PROGRAM_ENV:
        with pytest.raises(SettingsError) as plain:
            load_settings(config(medusa=json.dumps({"env": {name: "x"}})))
        assert [p.split(":")[0] for p in plain.value.problems] == [f"medusa.env.{name}"]
        with pytest.raises(SettingsError) as secret:
            load_settings(config(extraSecretEnv=json.dumps({name: "x"})))
        assert [p.split(":")[0] for p in secret.value.problems] == [f"extraSecretEnv.{name}"]
