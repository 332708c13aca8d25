"""guard: the injection corpus (pgvector), only where the extension is available

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-22

PostgreSQL without pgvector (Debian's PostgreSQL 15 has no package for it) gets no table: the
semantic detector then compares against the same corpus in-process. ``sync_corpus`` creates the
table later if the extension appears. A parallel branch to the auth/PII migrations (merged later).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    if not available:
        log.warning("pgvector is not available: no injection_corpus table (the detector runs in-process)")
        return
    try:
        with bind.begin_nested():  # a savepoint: lacking the privilege must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError as exc:
        log.warning("CREATE EXTENSION vector failed (%s): no injection_corpus table", exc.orig)
        return
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS injection_corpus (
            id text PRIMARY KEY,
            text text NOT NULL,
            lang varchar(8) NOT NULL,
            embedding vector(384) NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_injection_corpus_embedding "
        "ON injection_corpus USING hnsw (embedding vector_cosine_ops)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS injection_corpus")  # the extension stays: others may use it
