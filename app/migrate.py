"""``mailspine db upgrade``: Alembic migrations for our tables, then LangGraph's checkpoint tables."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.db import libpq_url, sqlalchemy_url

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # A sync psycopg engine: "postgresql+psycopg" serves both sync and async SQLAlchemy.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the database to the latest schema. Safe to run repeatedly and concurrently-ish
    (Alembic takes no lock: run it once per deploy, before the workers start)."""
    # "heads": parallel branches (features developed side by side) all apply; merge them when convenient.
    command.upgrade(alembic_config(url), "heads")
    asyncio.run(_setup_checkpointer(libpq_url(url)))
    asyncio.run(_sync_prompts(url))
    log.info("database schema is up to date")


async def _sync_prompts(url: str) -> None:
    """Store new prompt files in the registry; refuse when a released file was edited."""
    from agent.prompts.registry import sync_prompts
    from app.db import Database

    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            report = await sync_prompts(session)
    finally:
        await db.dispose()
    if report.added or report.labelled:
        log.info("prompt registry: stored %s; production set for %s", report.added, report.labelled)


async def _setup_checkpointer(url: str) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await saver.setup()
