"""Alembic environment of the reference CRM (run programmatically by ``infra.crm.migrate``).

The database URL is passed in ``config.attributes["sqlalchemy_url"]`` (already in the
``postgresql+psycopg://`` form). The version table lives in the ``crm`` schema, so the schema is
created before Alembic looks for it. A PostgreSQL advisory lock serialises concurrent runs.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from infra.crm.models import SCHEMA, Base

MIGRATION_LOCK_ID = 0x6D61696C637276  # arbitrary constant: "mailcrv"

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("sqlalchemy_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the CRM migrations")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table_schema=SCHEMA,
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID})
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                version_table_schema=SCHEMA,
                include_schemas=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.execute(text("SELECT pg_advisory_unlock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID})
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
