"""procrastinate job queue schema (3.10), owned by our migrations so enqueue can share our transactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op
from procrastinate.schema import SchemaManager

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Upgrading procrastinate: add a migration that runs the files from
# procrastinate/sql/migrations newer than the version the schema was created with (3.10.0).


def upgrade() -> None:
    connection = op.get_bind()
    exists = connection.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    if exists is None:
        # Straight to the psycopg cursor with no parameters: the schema contains literal '%'
        # characters that SQLAlchemy's parameter pass-through would make psycopg parse.
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        with dbapi.cursor() as cursor:
            cursor.execute(SchemaManager.get_schema())


def downgrade() -> None:
    raise NotImplementedError("dropping the job queue would lose queued work; do it by hand if you must")
