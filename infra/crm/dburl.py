"""Database URL handling: libpq-style URLs in, SQLAlchemy ``postgresql+psycopg`` URLs out."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DRIVERNAME = "postgresql+psycopg"
_ACCEPTED_SCHEMES = ("postgresql", "postgres")


def to_sqlalchemy_url(database_url: str) -> str:
    """Convert a libpq-style URL to the SQLAlchemy psycopg 3 form.

    ``postgresql://user@host:5432/db`` becomes ``postgresql+psycopg://user@host:5432/db``; a unix
    socket URL such as ``postgresql://postgres:@/db?host=/run/postgresql`` keeps its ``host`` query
    parameter (psycopg passes it through to libpq). URLs already naming a ``postgresql+<driver>``
    are switched to psycopg. Anything that is not PostgreSQL raises :class:`ValueError`.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {_redact(database_url)}") from exc
    backend = url.drivername.split("+", 1)[0]
    if backend not in _ACCEPTED_SCHEMES:
        raise ValueError(f"the CRM needs PostgreSQL, got scheme {url.drivername!r}")
    return url.set(drivername=DRIVERNAME).render_as_string(hide_password=False)


def _redact(database_url: str) -> str:
    """Best-effort removal of a password from a URL for error messages."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or "@" not in rest:
        return database_url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
