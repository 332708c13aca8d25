"""The injection corpus in Postgres: known attack sentences with their embeddings (pgvector).

Synchronous psycopg, unlike the other repositories: the guard pipeline is synchronous and asks
one nearest-neighbour query per email. The table exists only where pgvector does (migration
0006); ``corpus_ready`` tells the detector whether to query it or fall back to numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

DIM = 384
Conn = psycopg.Connection[Any]

_DDL = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS injection_corpus (
        id text PRIMARY KEY, text text NOT NULL, lang varchar(8) NOT NULL, embedding vector(384) NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_injection_corpus_embedding "
    "ON injection_corpus USING hnsw (embedding vector_cosine_ops)",
)
_NEAREST = """
SELECT q.ord, n.text, n.lang, 1 - n.distance
FROM unnest(%s::text[]) WITH ORDINALITY AS q(vec, ord)
CROSS JOIN LATERAL (
    SELECT c.text, c.lang, c.embedding <=> q.vec::vector AS distance
    FROM injection_corpus c
    ORDER BY c.embedding <=> q.vec::vector
    LIMIT 1
) n
ORDER BY q.ord
"""


@dataclass(frozen=True)
class CorpusRow:
    id: str
    text: str
    lang: str
    embedding: Sequence[float]


@dataclass(frozen=True)
class Neighbour:
    similarity: float  # cosine similarity, 1 - (embedding <=> query)
    text: str
    lang: str


def vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


def vector_available(conn: Conn) -> bool:
    """The server can load pgvector (installed or installable)."""
    return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None


def corpus_ready(conn: Conn) -> bool:
    """pgvector is installed in this database and the corpus table exists."""
    row = conn.execute(
        "SELECT to_regclass('injection_corpus') IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')"
    ).fetchone()
    return bool(row and row[0])


def ensure_table(conn: Conn) -> bool:
    """Create the extension, table and index when pgvector is available; False when it is not."""
    if not vector_available(conn):
        return False
    for statement in _DDL:
        conn.execute(statement)
    return True


def count_entries(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM injection_corpus").fetchone()
    return int(row[0]) if row else 0


def upsert_entries(conn: Conn, *, rows: Sequence[CorpusRow]) -> int:
    """Insert new rows and update changed ones (same id); returns how many were written."""
    written = 0
    for row in rows:
        cursor = conn.execute(
            """
            INSERT INTO injection_corpus (id, text, lang, embedding) VALUES (%s, %s, %s, %s::vector)
            ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, lang = EXCLUDED.lang,
                embedding = EXCLUDED.embedding
            WHERE (injection_corpus.text, injection_corpus.lang, injection_corpus.embedding::text)
                IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.lang, EXCLUDED.embedding::text)
            """,
            (row.id, row.text, row.lang, vector_literal(row.embedding)),
        )
        written += cursor.rowcount
    return written


def delete_except(conn: Conn, *, keep_ids: Sequence[str]) -> int:
    """Remove rows whose id is not in ``keep_ids`` (``sync_corpus(prune=True)``)."""
    return conn.execute("DELETE FROM injection_corpus WHERE NOT (id = ANY(%s))", (list(keep_ids),)).rowcount


def nearest(conn: Conn, *, embeddings: Sequence[Sequence[float]]) -> list[Neighbour | None]:
    """The most similar corpus sentence for each query vector (None when the corpus is empty)."""
    if not embeddings:
        return []
    rows = conn.execute(_NEAREST, ([vector_literal(e) for e in embeddings],)).fetchall()
    found = {int(ord_): Neighbour(float(sim), text, lang) for ord_, text, lang, sim in rows}
    return [found.get(i + 1) for i in range(len(embeddings))]
