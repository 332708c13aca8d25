"""which process ran what: runs.worker and spans.service_instance

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

Both hold the OpenTelemetry ``service.instance.id`` of a process (``app.telemetry.instance_id``):
on a run, the process that last started, resumed or finished it; on a span, the process that
recorded it. With several workers on one database, "which worker ran this email?" is answered
from Postgres instead of from each machine's logs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("worker", sa.String(100), nullable=True))
    op.add_column("spans", sa.Column("service_instance", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("spans", "service_instance")
    op.drop_column("runs", "worker")
