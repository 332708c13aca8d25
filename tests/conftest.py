"""Test-session fixtures: a real Postgres database per session, migrated by Alembic.

``DATABASE_URL`` set → a fresh database is created on that server; unset → the embedded server
under ``var/test`` (the same code the app uses). The database is dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from app.db import Database, drop_database, fresh_database, libpq_url
from app.settings import REPO_ROOT, Settings


def _server_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return libpq_url(os.environ["DATABASE_URL"])
    from app.embedded_pg import start_embedded

    return start_embedded(var_dir=REPO_ROOT / "var" / "test", db_name="postgres")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    from app.migrate import upgrade

    name = f"mailspine_test_{uuid.uuid4().hex[:10]}"
    url = fresh_database(pg_server_url, name)
    upgrade(url)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture(scope="session")
def test_settings(database_url: str) -> Settings:
    return Settings(env="test", database_url=database_url, var_dir=REPO_ROOT / "var" / "test", _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()
