"""Companies, tickets and deals (same record shape as contacts and notes).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "crm"
TABLES = ("companies", "tickets", "deals")


def _object_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("properties", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        schema=SCHEMA,
    )


def upgrade() -> None:
    for name in TABLES:
        _object_table(name)
    # Search by domain compares lower(properties ->> 'domain'); see infra/crm/search.py.
    op.create_index(
        "ix_companies_domain", "companies", [sa.text("lower(properties ->> 'domain')")], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_companies_domain", table_name="companies", schema=SCHEMA)
    types = ", ".join(f"'{name}'" for name in TABLES)
    op.execute(f"DELETE FROM {SCHEMA}.associations WHERE from_type IN ({types}) OR to_type IN ({types})")
    for name in reversed(TABLES):
        op.drop_table(name, schema=SCHEMA)
