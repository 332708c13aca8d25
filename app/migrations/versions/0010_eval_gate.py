"""eval_runs.gate_report (the gate's per-metric verdict for a run)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("eval_runs", sa.Column("gate_report", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("eval_runs", "gate_report")
