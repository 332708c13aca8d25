"""Run the CRM's own Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from infra.crm.dburl import to_sqlalchemy_url

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """Build the Alembic configuration in code; ``database_url`` is libpq-style."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute rather than a main option: no ConfigParser %-interpolation of passwords.
    config.attributes["sqlalchemy_url"] = to_sqlalchemy_url(database_url)
    return config


def upgrade(database_url: str) -> None:
    """Upgrade the CRM schema (PostgreSQL schema ``crm``) to the latest revision. Idempotent."""
    logger.info("applying CRM migrations")
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str:
    """The newest CRM revision (what ``upgrade`` brings a database to)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError("the CRM migrations have no head revision")
    return head
