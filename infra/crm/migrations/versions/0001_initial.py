"""Initial CRM schema: contacts, notes, associations, tokens, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2024-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "crm"


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[sa.DateTime]:
    default = None if nullable else sa.text("now()")
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _jsonb_properties() -> sa.Column[postgresql.JSONB]:
    return sa.Column("properties", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb"))


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        _jsonb_properties(),
        sa.Column("email", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.UniqueConstraint("email", name="uq_contacts_email"),
        sa.CheckConstraint("email = lower(email)", name="ck_contacts_email_lowercase"),
        schema=SCHEMA,
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        _jsonb_properties(),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name="pk_notes"),
        schema=SCHEMA,
    )
    op.create_table(
        "associations",
        sa.Column("from_type", sa.Text(), nullable=False),
        sa.Column("from_id", sa.BigInteger(), nullable=False),
        sa.Column("to_type", sa.Text(), nullable=False),
        sa.Column("to_id", sa.BigInteger(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint(
            "from_type", "from_id", "to_type", "to_id", "type_id", name="pk_associations"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        _timestamp("created_at"),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_tokens_token_sha256"),
        sa.CheckConstraint("length(token_sha256) = 64", name="ck_tokens_token_sha256_hex"),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_json", postgresql.JSONB(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["token_id"],
            [f"{SCHEMA}.tokens.id"],
            name="fk_idempotency_keys_token_id_tokens",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_id", "key", name="uq_idempotency_keys_token_id_key"),
        schema=SCHEMA,
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys", schema=SCHEMA)
    for table in ("idempotency_keys", "tokens", "associations", "notes", "contacts"):
        op.drop_table(table, schema=SCHEMA)
    # The schema itself stays: it holds Alembic's version table.
