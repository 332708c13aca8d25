"""online evaluation: online_scores, drift_alarms, shadow_runs

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_scores",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("email_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("value IS NULL OR (value >= 0 AND value <= 1)", name="ck_online_scores_value"),
        sa.UniqueConstraint("run_id", "name", name="uq_online_scores_run_name"),
    )
    op.create_index("ix_online_scores_name", "online_scores", ["name", "id"])
    op.create_index("ix_online_scores_trace", "online_scores", ["trace_id"])
    op.create_table(
        "drift_alarms",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("window_mean", sa.Float(), nullable=False),
        sa.Column("window_size", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_mean", sa.Float(), nullable=True),
    )
    op.create_index("ix_drift_alarms_open", "drift_alarms", ["name", "cleared_at"])
    # At most one open alarm per score name.
    op.create_index(
        "uq_drift_alarms_one_open",
        "drift_alarms",
        ["name"],
        unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "shadow_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("email_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("candidate", sa.String(length=200), nullable=False),
        sa.Column("production_prompts", postgresql.JSONB(), nullable=False),
        sa.Column("candidate_prompts", postgresql.JSONB(), nullable=False),
        sa.Column("production_output", postgresql.JSONB(), nullable=False),
        sa.Column("candidate_output", postgresql.JSONB(), nullable=False),
        sa.Column("intent_agrees", sa.Boolean(), nullable=False),
        sa.Column("route_agrees", sa.Boolean(), nullable=False),
        sa.Column("actions_agree", sa.Boolean(), nullable=False),
        sa.Column("field_diffs", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("email_id", "candidate", name="uq_shadow_runs_email_candidate"),
    )
    op.create_index("ix_shadow_runs_created", "shadow_runs", ["created_at"])


def downgrade() -> None:
    op.drop_table("shadow_runs")
    op.drop_table("drift_alarms")
    op.drop_table("online_scores")
