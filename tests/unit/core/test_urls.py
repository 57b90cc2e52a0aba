"""URL building with hostile passwords (rules 4 and 5), parsed back the way clients do."""

from urllib.parse import unquote, urlsplit

import pytest

from core.urls import postgres_url, redis_url

HOSTILE = ["p@ss:w/rd?#%'\" x", "a b", "100%", "#?/:@", "'quoted'", '"dq"', "plain123456789"]


def ioredis_like_parse(url: str) -> tuple[str, str, str, int, str]:
    """ioredis uses WHATWG URL parsing and decodeURIComponent on user info."""
    parts = urlsplit(url)
    assert parts.scheme == "redis"
    return (unquote(parts.username or ""), unquote(parts.password or ""), parts.hostname or "",
            parts.port or 6379, parts.path.lstrip("/"))


@pytest.mark.parametrize("password", HOSTILE)
def test_redis_url_round_trips_any_password(password):
    url = redis_url(password, "redis")
    assert "?password=" not in url and "'" not in url and '"' not in url and " " not in url
    assert ioredis_like_parse(url) == ("default", password, "redis", 6379, "0")


@pytest.mark.parametrize("password", HOSTILE)
def test_postgres_url_round_trips_any_password_and_disables_ssl_for_bundled(password):
    url = postgres_url("medusa", password, "postgres", "medusa")
    parts = urlsplit(url)
    assert unquote(parts.password or "") == password
    assert parts.hostname == "postgres" and parts.port == 5432 and parts.path == "/medusa"
    assert parts.query == "sslmode=disable"


def test_postgres_url_without_sslmode_for_managed_databases():
    assert postgres_url("u", "p", "db.example.com", "x", sslmode=None) == "postgres://u:p@db.example.com:5432/x"


def test_exact_shape():
    assert redis_url("a@b", "redis") == "redis://default:a%40b@redis:6379/0"
    assert postgres_url("medusa", "a b", "postgres", "medusa") == (
        "postgres://medusa:a%20b@postgres:5432/medusa?sslmode=disable"
    )
