"""The curated corpus of known injection attacks, and ``sync_corpus`` to seed Postgres with it.

``data/injection_corpus.jsonl``: one ``{"text": ..., "lang": ...}`` per line, short attack
phrasings in en/de/fr/es/it/pt/nl. ``data/benign_sentences.jsonl`` (customer-mail sentences,
many with the same trigger words) and ``data/heldout_attacks.jsonl`` (attacks *not* in the
corpus) pick and check the thresholds; they never enter the corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.db import libpq_url
from app.repo import injection_corpus as repo
from app.settings_guard import GuardSettings
from gateway.guards.patterns import DATA_DIR

log = logging.getLogger(__name__)
CORPUS = DATA_DIR / "injection_corpus.jsonl"
BENIGN = DATA_DIR / "benign_sentences.jsonl"
HELDOUT = DATA_DIR / "heldout_attacks.jsonl"


@dataclass(frozen=True)
class Sentence:
    text: str
    lang: str

    @property
    def id(self) -> str:
        """Content-addressed: the same sentence is the same row in every database."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:24]


def load_sentences(path: Path = CORPUS) -> list[Sentence]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Sentence(text=row["text"], lang=row["lang"]) for row in rows]


def sync_corpus(database_url: str, *, settings: GuardSettings | None = None, prune: bool = False) -> int:
    """Seed or refresh the ``injection_corpus`` table from the JSONL file; idempotent.

    Returns the number of rows inserted or changed (0 on a second run). Without pgvector on the
    server it writes nothing and returns 0 (the detector uses the in-process corpus). Creates the
    table if the extension became available after migrating. ``prune`` deletes rows that are not
    in the file (rows an operator added by hand survive otherwise).
    """
    from gateway.guards.semantic import shared_embedder

    settings = settings or GuardSettings()
    with psycopg.connect(libpq_url(database_url)) as conn:
        if not repo.ensure_table(conn):
            log.warning("pgvector is not available on this server: corpus not synced (in-process fallback)")
            return 0
        sentences = load_sentences()
        embedder = shared_embedder(settings)
        if embedder.dim != repo.DIM:
            raise ValueError(
                f"the embedding model has {embedder.dim} dimensions; the table stores {repo.DIM}"
            )
        vectors = embedder.encode([s.text for s in sentences])
        rows = [
            repo.CorpusRow(id=s.id, text=s.text, lang=s.lang, embedding=v.tolist())
            for s, v in zip(sentences, vectors, strict=True)
        ]
        written = repo.upsert_entries(conn, rows=rows)
        if prune:
            written += repo.delete_except(conn, keep_ids=[r.id for r in rows])
        conn.commit()
    log.info("injection corpus synced: %d rows written", written)
    return written
