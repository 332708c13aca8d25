"""prompt registry: prompt_versions, prompt_labels, prompt_label_history, prompt_thread_versions

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_VERSION_FK = (["name", "version"], ["prompt_versions.name", "prompt_versions.version"])


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("version", sa.String(length=64), primary_key=True),
        sa.Column("content", postgresql.JSONB(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("derived_from", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("source IN ('file', 'draft')", name="ck_prompt_versions_source"),
    )
    op.create_table(
        "prompt_label_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("percentage", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("replaces_id", sa.BigInteger(), sa.ForeignKey("prompt_label_history.id"), nullable=True),
        sa.Column("eval_run_id", sa.BigInteger(), sa.ForeignKey("eval_runs.id"), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(*_VERSION_FK),
        sa.CheckConstraint(
            "label IN ('production', 'staging', 'canary')", name="ck_prompt_label_history_label"
        ),
    )
    op.create_index("ix_prompt_label_history_label", "prompt_label_history", ["name", "label", "id"])
    op.create_table(
        "prompt_labels",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("label", sa.String(length=16), primary_key=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("percentage", sa.Integer(), nullable=True),
        sa.Column("history_id", sa.BigInteger(), sa.ForeignKey("prompt_label_history.id"), nullable=False),
        sa.ForeignKeyConstraint(*_VERSION_FK),
        sa.CheckConstraint("label IN ('production', 'staging', 'canary')", name="ck_prompt_labels_label"),
        sa.CheckConstraint(
            "(label = 'canary') = (percentage IS NOT NULL) AND coalesce(percentage BETWEEN 0 AND 100, true)",
            name="ck_prompt_labels_percentage",
        ),
    )
    op.create_table(
        "prompt_thread_versions",
        sa.Column("thread_id", sa.String(length=100), primary_key=True),
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    # Versions are never overwritten or removed: the database refuses it, as for the audit log.
    op.execute(
        """
        CREATE FUNCTION prompt_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'prompt_versions is append-only (% refused)', TG_OP;
        END;
        $$;
        """
    )
    op.execute(
        "CREATE TRIGGER prompt_versions_no_update BEFORE UPDATE OR DELETE ON prompt_versions "
        "FOR EACH ROW EXECUTE FUNCTION prompt_versions_immutable()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS prompt_versions_no_update ON prompt_versions")
    op.execute("DROP FUNCTION IF EXISTS prompt_versions_immutable()")
    op.drop_table("prompt_thread_versions")
    op.drop_table("prompt_labels")
    op.drop_table("prompt_label_history")
    op.drop_table("prompt_versions")
