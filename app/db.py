"""Database connections: one libpq URL resolved once, used by SQLAlchemy, LangGraph and procrastinate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
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


def make_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(sqlalchemy_url(url), pool_size=pool_size, pool_pre_ping=True)


class Database:
    """An engine plus a session factory; one per process, created by the composition root."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = libpq_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size)
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
