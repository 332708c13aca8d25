"""merge the eval gate, prompt registry, tool rate limits, audit trace, email embeddings and
online evaluation branches (each was written on top of 0009)

Revision ID: 0016
Revises: 0010, 0011, 0012, 0013, 0014, 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

revision = "0016"
down_revision = ("0010", "0011", "0012", "0013", "0014", "0015")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
