"""Every bad input gets a clear, specific error before any resource exists (rule 10)."""

import ipaddress
import json
from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings
from tests.unit.configs import config

BAD_CONFIGS = [
    (
        {"activeColor": None},
        "activeColor: required; set it with `pulumi config set activeColor blue` (blue or green)",
    ),
    ({"activeColor": "purple"}, "activeColor: must be 'blue' or 'green', got 'purple'"),
    (
        {"activeColor": "green"},
        "greenImage: required because activeColor is green; set it with "
        "`pulumi config set greenImage registry/app:tag` (or build it from an app "
        "directory: `pulumi config set --path greenBuild.context ./app`)",
    ),
    (
        {"blueBuild": '{"context": "examples/medusa-app"}'},
        "blueBuild: set together with blueImage; keep one (`pulumi config rm blueBuild` or "
        "`pulumi config rm blueImage`)",
    ),
    (
        {"greenBuild": '{"context": "examples/medusa-app"}'},
        "greenBuild: only the color being released (activeColor) is built; pin green to the image it "
        "was built as: `pulumi config set greenImage <stack output imageRefs.green>` and "
        "`pulumi config rm greenBuild` (`bin/bluegreen release` does this)",
    ),
    (
        {"greenBuild": '"examples/medusa-app"'},
        "greenBuild: must be an object (set it with --path, e.g. `pulumi config set --path greenBuild.name value`)",
    ),
    (
        {"activeColor": "green", "greenBuild": '{"context": "app", "args": {"NODE-IMAGE": "x"}}'},
        "greenBuild.args.NODE-IMAGE: is not a valid name (it must match ^[A-Za-z_][A-Za-z0-9_]*$)",
    ),
    (
        {"activeColor": "green", "greenBuild": '{"context": "app", "args": {"NPM_TOKEN": "x"}}'},
        "greenBuild.args.NPM_TOKEN: looks like a secret, but build args reach the docker command line and the "
        "image history; pass it as a BuildKit secret file instead "
        "(`pulumi config set --path greenBuild.secretFiles.<id> /path/to/file`)",
    ),
    (
        {"blueImage": "shop/medusa"},
        "blueImage: 'shop/medusa' has no tag or digest; pin a release, e.g. "
        "'shop/medusa:1.4.2' or 'shop/medusa@sha256:<digest>'",
    ),
    (
        {"blueImage": "shop/medusa:latest"},
        "blueImage: 'shop/medusa:latest' uses the floating tag 'latest', which makes rollback "
        "from history impossible; pin a release tag or digest",
    ),
    (
        {"blueImage": "Shop/Medusa:1"},
        "blueImage: 'Shop/Medusa:1' is not a valid image reference (name[:tag][@sha256:digest])",
    ),
    (
        {"domain": "https://shop.example.com/"},
        "domain: 'https://shop.example.com/' is not a valid host name (lowercase letters, digits "
        "and hyphens in dot-separated labels, no scheme, port or path)",
    ),
    (
        {"redisPassword": "'hunter2hunter2'"},
        "redisPassword: is wrapped in quotes, which would become part of the value (the seed "
        "system's quote bug); set it without the surrounding quotes",
    ),
    (
        {"postgresPassword": "short"},
        "postgresPassword: is shorter than 12 characters; use a longer random value",
    ),
    (
        {"jwtSecret": "line\nbreak" + "x" * 40},
        "jwtSecret: contains a control character or line break; remove it",
    ),
    (
        {"database": json.dumps({"mode": "external"})},
        "databaseUrl: required because database.mode is external; set it with "
        "`pulumi config set --secret databaseUrl postgres://user:pass@host:5432/db`",
    ),
    (
        {"database": json.dumps({"mode": "external"}), "databaseUrl": "postgres://u:p@db:5432/x?ssl_mode=require"},
        "databaseUrl: uses 'ssl_mode'; the Postgres driver reads 'sslmode'",
    ),
    (
        {"redis": json.dumps({"mode": "external"}), "redisUrl": "redis://redis:6379/0?password=abc"},
        "redisUrl: carries the password as '?password=', which Redis clients ignore; put it in "
        "the user info: redis://default:<percent-encoded password>@host:6379/0",
    ),
    (
        {"tls": json.dumps({"enabled": True, "certPath": "/etc/ssl/shop.pem"})},
        "tls: certPath and keyPath go together (files on the Docker host); set both, or neither to "
        "get certificates from tls.acme",
    ),
    (
        {"tls": json.dumps({"enabled": True}), "domain": "localhost"},
        "domain: 'localhost' cannot get an ACME certificate (the CA needs a DNS name that points at the "
        "Docker host); set the real domain, or tls.certPath and tls.keyPath",
    ),
    (
        {"tls": json.dumps({"enabled": True}), "router": json.dumps({"httpPort": 8080})},
        "router.httpPort: 8080, but ACME's HTTP-01 challenge always comes to port 80; publish the router "
        "on 80 or bring your own certificate (tls.certPath, tls.keyPath)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "acme": {"email": "not-an-email"}})},
        "tls.acme.email: 'not-an-email' is not an email address (e.g. ops@shop.example.com)",
    ),
    (
        {"router": json.dumps({"httpPort": 9080})},
        "router.previewPort: port 9080 is already used by router.httpPort; choose another",
    ),
    (
        {"router": json.dumps({"httpPort": 70000})},
        "router.httpPort: input should be less than or equal to 65535",
    ),
    (
        {"router": json.dumps({"bindAddress": "localhost"})},
        "router.bindAddress: 'localhost' is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)",
    ),
    (
        {"router": json.dumps({"previewBindAddress": "0.0.0.0"})},
        "previewToken: required because router.previewBindAddress is not loopback, so the idle "
        "color would be public; set it with `pulumi config set --secret previewToken <random>`",
    ),
    (
        {"activeColour": "blue"},
        "activeColour: unknown config key; did you mean 'activeColor'?",
    ),
    (
        {"otherColor": "paused"},
        "otherColor: must be 'warm' or 'stopped', got 'paused'",
    ),
    (
        {"medusa": json.dumps({"storeCors": "https://shop.example.com/,https://b.example.com"})},
        "medusa.storeCors[0]: 'https://shop.example.com/' is not an origin; write "
        "scheme://host[:port] with no path or trailing slash, e.g. 'https://shop.example.com'",
    ),
    (
        {"medusa": json.dumps({"env": {"SHOP_API_KEY": "sk_live_x"}})},
        "medusa.env.SHOP_API_KEY: looks like a secret but medusa.env is stored in plain text; "
        "move it to extraSecretEnv (`pulumi config set --secret --path "
        "extraSecretEnv.SHOP_API_KEY ...`)",
    ),
    # Names the program sets from a setting of its own: the env entry would silently win over
    # the setting (the bug this table now guards), so it is refused and the setting named.
    (
        {"medusa": json.dumps({"env": {"S3_BUCKET": "other-bucket"}})},
        "medusa.env.S3_BUCKET: set by the program from s3.bucket; set s3.bucket instead and remove it from medusa.env",
    ),
    (
        {"medusa": json.dumps({"env": {"STRIPE_API_KEY": "sk_live_x"}})},
        "medusa.env.STRIPE_API_KEY: set by the program from stripeApiKey; set stripeApiKey instead and remove it "
        "from medusa.env",
    ),
    (
        {"extraSecretEnv": json.dumps({"STRIPE_API_KEY": "sk_live_xxxxxxxx"})},
        "extraSecretEnv.STRIPE_API_KEY: set by the program from stripeApiKey; set stripeApiKey instead and remove "
        "it from extraSecretEnv",
    ),
    (
        {"medusa": json.dumps({"env": {"DATABASE_URL": "postgres://x"}})},
        "medusa.env.DATABASE_URL: set by the program from its own settings; remove it from medusa.env",
    ),
    (
        {"healthGate": json.dumps({"timeoutSeconds": 10, "deadlineSeconds": 5})},
        "healthGate.deadlineSeconds: must be at least healthGate.timeoutSeconds",
    ),
    (
        {"timeouts": json.dumps({"migrateSeconds": 0})},
        "timeouts.migrateSeconds: input should be greater than or equal to 10",
    ),
    (
        {"releases": json.dumps({"keep": 0})},
        "releases.keep: must be at least 1 (the number of earlier releases whose images stay on the "
        "Docker host for `bin/bluegreen rollback`), got 0",
    ),
    (
        {"releases": json.dumps({"keep": "all"})},
        "releases.keep: input should be a valid integer, unable to parse string as an integer",
    ),
    (
        {"router": "8080"},
        "router: must be an object (set it with --path, e.g. `pulumi config set --path router.name value`)",
    ),
    (
        {"dockerHost": "docker.example.com"},
        # (The pattern is quoted as written: lowercasing it once turned \\S into \\s.)
        "dockerHost: has an invalid format (it must match ^(unix|ssh|tcp)://\\S+$)",
    ),
]


def _apply(overrides):
    raw = config()
    for key, value in overrides.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(("overrides", "expected"), BAD_CONFIGS, ids=[e[:40] for _, e in BAD_CONFIGS])
def test_bad_config_names_key_problem_and_fix(overrides, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(_apply(overrides))
    assert expected in caught.value.problems, caught.value.problems


def test_errors_never_echo_a_secret_value():
    secret = "'super-secret-value-42'"
    with pytest.raises(SettingsError) as caught:
        load_settings(config(redisPassword=secret, cookieSecret="tiny-secret-value"))
    assert "super-secret-value-42" not in str(caught.value)
    assert "tiny-secret-value" not in str(caught.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        load_settings(config(activeColor="purple", blueImage="x", domain="bad domain"))
    assert len(caught.value.problems) == 3


def test_valid_config_and_defaults():
    settings = load_settings(config())
    assert settings.active_color == "blue"
    assert settings.other_color == "warm"
    assert settings.router.preview_bind_address == "127.0.0.1"
    assert settings.medusa.store_cors == ["https://shop.example.com"]
    assert settings.public_url == "http://api.shop.example.com"
    assert settings.releases.keep == 3


def test_seed_style_comma_separated_cors_is_accepted():
    settings = load_settings(config(medusa=json.dumps({"storeCors": "https://a.example.com, https://b.example.com"})))
    assert settings.medusa.store_cors == ["https://a.example.com", "https://b.example.com"]


def test_empty_value_clears_a_key():
    settings = load_settings(config(greenImage=""))
    assert settings.green_image is None




def _stack_file(name):
    import yaml

    from core.naming import PROJECT

    path = Path(__file__).resolve().parents[3] / f"Pulumi.{name}.yaml"
    config = yaml.safe_load(path.read_text())["config"]
    return {
        key.removeprefix(f"{PROJECT}:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


def test_shipped_local_stack_is_valid():
    settings = load_settings(_stack_file("local"))
    assert settings.router.bind_address == "127.0.0.1"
    assert settings.meilisearch.enabled is False


def test_shipped_production_stack_loads_and_publishes_no_preview_route():
    settings = load_settings(_stack_file("production"))
    assert ipaddress.ip_address(settings.router.preview_bind_address).is_loopback
    assert settings.docker_host.startswith("ssh://") and settings.tls.enabled
