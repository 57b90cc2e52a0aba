"""Connection URLs for Medusa, built so that any password survives the trip.

Rules 4 and 5 of docs/rules.md: the password lives in the user info, percent-encoded (never a
`?password=` query, never quotes), and the bundled Postgres gets `sslmode=disable` because
Medusa's modules default to SSL for any host that is not localhost.
"""

from urllib.parse import quote, urlencode


def _encode(part: str) -> str:
    # safe="" so that @ : / ? # % and spaces are all escaped, as RFC 3986 user info requires.
    return quote(part, safe="")


def redis_url(password: str, host: str, port: int = 6379, db: int = 0, user: str = "default") -> str:
    return f"redis://{_encode(user)}:{_encode(password)}@{host}:{port}/{db}"


def postgres_url(
    user: str,
    password: str,
    host: str,
    database: str,
    port: int = 5432,
    sslmode: str | None = "disable",
) -> str:
    query = f"?{urlencode({'sslmode': sslmode})}" if sslmode else ""
    return f"postgres://{_encode(user)}:{_encode(password)}@{host}:{port}/{_encode(database)}{query}"
