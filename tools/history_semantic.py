"""Read tool: earlier emails of the same sender or company whose text is closest in meaning.

The query is the current email's own stored embedding (``tools/history_index.py``), so this tool
loads no model. Three ways, in order, and the result says which ran (``via``):

- ``pgvector``: the server has pgvector; an exact cosine search (``<=>``) over the candidates;
- ``numpy``: no pgvector; the newest ``numpy_max_candidates`` candidates' vectors (``real[]``)
  are compared in-process;
- ``fulltext``: no embedding for this email (semantic search off, no model, or not indexed yet);
  Postgres full-text search (``simple`` configuration) for the words of its redacted text.

The candidates are always limited to the same sender or the same company domain (free-mail
domains excepted) and to emails before this one, outside its own conversation (the thread tool
has those): one customer's planner never sees another customer's email.
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np

from app.db import Database
from app.repo import email_embeddings as repo
from app.settings_history import HistorySettings
from tools.base import ToolSpec, tool_span
from tools.history import HistoryEntry, Subject
from tools.history_emails import email_entry
from tools.history_redact import neutralise

SIMILAR_EMAILS = ToolSpec(
    name="history_similar",
    description="Earlier emails of the same sender or company that are closest in meaning to this one.",
    access="read",
    scopes=("mail.history.read",),
)
Via = Literal["pgvector", "numpy", "fulltext"]
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]{4,}")
# Placeholder kinds and the commonest mail words say nothing about the matter at hand.
_STOP = frozenset(
    {
        "person",
        "email",
        "phone",
        "card",
        "iban",
        "address",
        "redacted",
        "example",
        "with",
        "that",
        "this",
        "have",
        "from",
        "your",
        "will",
        "would",
        "could",
        "should",
        "thanks",
        "thank",
        "please",
        "regards",
        "dear",
        "hello",
        "best",
        "kind",
        "sincerely",
        "about",
        "there",
        "their",
        "they",
        "them",
        "what",
        "when",
        "which",
        "were",
        "been",
        "also",
        "just",
    }
)


def query_words(text: str) -> list[str]:
    """Distinct words (4+ letters or digits, lowercased, in order) of ``text`` for the fallback."""
    words = [w for w in _WORD.findall(neutralise(text).lower()) if w not in _STOP]
    return list(dict.fromkeys(words))[:MAX_QUERY_WORDS]


async def similar_emails(
    db: Database, subject: Subject, *, settings: HistorySettings, limit: int
) -> list[HistoryEntry]:
    with tool_span(SIMILAR_EMAILS) as span:
        if not subject.sender and not subject.domain:
            span.set_attribute("mailspine.history.backend", "none")
            return []
        scope = repo.SearchScope(
            before_id=subject.email_id,
            sender=subject.sender,
            domain=subject.domain,
            conversation_id=subject.conversation_id,
        )
        async with db.transaction() as session:
            kind = await repo.backend(session)
            query = (
                await repo.get_vector(session, email_id=subject.email_id, kind=kind)
                if kind and settings.semantic_enabled
                else None
            )
            via: Via
            if query is not None and kind == "pgvector":
                via = "pgvector"
                found = await repo.nearest_pgvector(session, query=query, limit=limit, scope=scope)
                found = [(i, s) for i, s in found if s >= settings.semantic_min_similarity]
            elif query is not None:
                via = "numpy"
                candidates = await repo.candidate_vectors(
                    session, limit=settings.numpy_max_candidates, scope=scope
                )
                found = _nearest(query, candidates, limit=limit, floor=settings.semantic_min_similarity)
            else:
                via = "fulltext"
                found = await repo.fulltext(
                    session, words=query_words(subject.text), limit=limit, scope=scope
                )
            rows = await repo.emails_by_id(session, ids=[i for i, _ in found])
        span.set_attribute("mailspine.history.backend", via)
        span.set_attribute("mailspine.history.items", len(found))
        return [
            email_entry(rows[i], via=via, excerpt_chars=settings.excerpt_chars, source="semantic")
            for i, _ in found
            if i in rows
        ]


def _nearest(
    query: list[float], candidates: list[tuple[int, list[float]]], *, limit: int, floor: float
) -> list[tuple[int, float]]:
    if not candidates:
        return []
    matrix = np.asarray([v for _, v in candidates], dtype=np.float32)
    sims = matrix @ np.asarray(query, dtype=np.float32)  # unit vectors: the dot product is the cosine
    order = np.argsort(-sims, kind="stable")[:limit]
    return [(candidates[j][0], float(sims[j])) for j in order if float(sims[j]) >= floor]
