"""history: one embedding per email (pgvector where available) and full-text search over emails

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-04

``email_embeddings.embedding`` is ``vector(384)`` when the server has pgvector (the embedded
PostgreSQL 16) and ``real[]`` otherwise (Debian's PostgreSQL 15); ``app/repo/email_embeddings.py``
reads the column's type and searches with ``<=>`` or with numpy over the candidates. There is no
HNSW index on purpose: every search is limited to one sender or one company, so Postgres filters
by those columns first and compares the few candidates exactly (an approximate index with a filter
can return fewer rows than asked for). The full-text fallback is an expression index on the
emails' redacted text, with the ``simple`` configuration (no stemming: mail comes in many languages).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None
log = logging.getLogger("alembic.runtime.migration")


def _pgvector(bind: sa.engine.Connection) -> bool:
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).scalar()
    if not available:
        log.warning("pgvector is not available: email embeddings are stored as real[] (numpy search)")
        return False
    try:
        with bind.begin_nested():  # a savepoint: lacking the privilege must not abort the migration
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError as exc:
        log.warning("CREATE EXTENSION vector failed (%s): email embeddings stored as real[]", exc.orig)
        return False
    return True


def upgrade() -> None:
    column = "vector(384)" if _pgvector(op.get_bind()) else "real[]"
    op.execute(
        f"""
        CREATE TABLE email_embeddings (
            email_id bigint PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
            sender_address varchar(320),
            sender_domain varchar(255),
            model varchar(200) NOT NULL,
            embedding {column} NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX ix_email_embeddings_sender ON email_embeddings (sender_address)")
    op.execute("CREATE INDEX ix_email_embeddings_domain ON email_embeddings (sender_domain)")
    # Same-company history and the full-text fallback, both over the emails table itself.
    op.execute("CREATE INDEX ix_emails_sender_domain ON emails (lower(split_part(sender_address, '@', 2)))")
    op.execute(
        "CREATE INDEX ix_emails_text_fts ON emails USING gin (to_tsvector('simple', coalesce(text_body, '')))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_emails_text_fts")
    op.execute("DROP INDEX IF EXISTS ix_emails_sender_domain")
    op.execute("DROP TABLE IF EXISTS email_embeddings")  # the extension stays: others may use it
