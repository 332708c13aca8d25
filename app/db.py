"""Database connections: one libpq URL resolved once, used by SQLAlchemy, LangGraph and procrastinate."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.settings import Settings

_resolved: dict[str, str] = {}


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` when set, otherwise the embedded cluster (started on first use)."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    key = str(settings.var_dir)
    if key not in _resolved:
        from app.embedded_pg import start_embedded

        _resolved[key] = start_embedded(var_dir=settings.var_dir, db_name=settings.embedded_db_name)
    return _resolved[key]


def libpq_url(url: str) -> str:
    """Normalise ``postgresql+driver://`` / ``postgres://`` to the plain libpq form."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, *parts[1:]))


def sqlalchemy_url(url: str) -> str:
    parts = urlsplit(libpq_url(url))
    return urlunsplit(("postgresql+psycopg", *parts[1:]))


# A pooled connection idle for longer than this is checked with a round trip before it is used;
# one returned to the pool more recently is used as is. Checking every checkout (pool_pre_ping)
# cost a round trip per transaction, a third of all statements on the hot path. A connection
# broken within the window (Postgres restarted a moment ago) fails its transaction once: the
# error is a disconnect, SQLAlchemy then discards every connection opened before it, and the
# caller treats it as transient (a job is retried, see app/tasks.py).
IDLE_CHECK_S = 2.0


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> AsyncEngine:
    engine = create_async_engine(sqlalchemy_url(url), pool_size=pool_size, max_overflow=max_overflow)
    _check_idle_connections(engine)
    return engine


def _check_idle_connections(engine: AsyncEngine) -> None:
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def stamp(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get("returned_at")  # None: a new connection, nothing to check
        if returned is None or time.monotonic() - returned < IDLE_CHECK_S:
            return
        try:  # runs inside SQLAlchemy's greenlet, as pool_pre_ping's own ping does
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")  # the pool connects afresh


class Database:
    """An engine plus a session factory; one per process, created by the composition root."""

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        self.url = libpq_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size, max_overflow=max_overflow)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def fresh_database(server_url: str, name: str) -> str:
    """Drop and recreate database ``name`` on the server of ``server_url``; return its URL.

    For the demo and tests only (needs CREATEDB). ``name`` is ours, never user input.
    """
    drop_database(server_url, name)
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(libpq_url(server_url))
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
