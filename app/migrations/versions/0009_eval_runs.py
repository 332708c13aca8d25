"""eval_runs (one row per offline evaluation run)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dataset_path", sa.Text(), nullable=False),
        sa.Column("dataset_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompts", postgresql.JSONB(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), nullable=False),
        sa.Column("cases", postgresql.JSONB(), nullable=False),
        sa.Column("passed_gate", sa.Boolean(), nullable=True),
    )
    op.create_index("ix_eval_runs_dataset", "eval_runs", ["dataset_sha256", "started_at"])


def downgrade() -> None:
    op.drop_table("eval_runs")
