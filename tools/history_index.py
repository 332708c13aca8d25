"""Embeddings of emails for the semantic history: the redacted text, embedded when processed.

The model is the gateway's all-MiniLM-L6-v2 (``gateway/guards/embeddings.py``), loaded once per
process from the bundled package or ``MAILSPINE_GUARD__EMBEDDING_MODEL_DIR``, never downloaded.
That embedder truncates each input at 40 tokens (it embeds sentence windows), so an email is
embedded as the normalised mean of its first ``MAX_CHUNKS`` chunks of ``CHUNK_WORDS`` words.
Placeholders are neutralised first (``[PERSON_1]`` → ``[PERSON]``), so their numbering does not
make two emails look alike or different.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np

from app.db import Database
from app.repo import email_embeddings as repo
from app.repo import emails
from app.settings import Settings
from app.settings_guard import GuardSettings
from tools.history_freemail import company_domain
from tools.history_redact import neutralise

log = logging.getLogger(__name__)
CHUNK_WORDS = 30
MAX_CHUNKS = 8
MODEL_NAME = "all-MiniLM-L6-v2"


def chunks(text: str) -> list[str]:
    words = neutralise(text).split()
    return [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)][:MAX_CHUNKS]


def embedder(guard: GuardSettings) -> Any:
    """The process's shared embedder (raises the gateway's ``ModelUnavailable`` without a model)."""
    from gateway.guards.semantic import shared_embedder

    return shared_embedder(guard)


def embed_text(guard: GuardSettings, text: str) -> list[float] | None:
    """One unit vector for ``text``; None when it has no words."""
    parts = chunks(text)
    if not parts:
        return None
    vectors = embedder(guard).encode(parts)
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return [float(v) for v in (mean / norm if norm > 0 else mean)]


async def index_email(db: Database, *, email_id: int, settings: Settings, replace: bool = False) -> bool:
    """Embed one stored email's redacted text; False when it is not embedded: semantic history is
    off, PII redaction is off (only redacted text is embedded), there is no text or no table, or it
    has an embedding already (unless ``replace``)."""
    if not (settings.history.semantic_enabled and settings.pii.enabled):
        return False
    async with db.transaction() as session:
        kind = await repo.backend(session)
        row = await emails.get_email(session, email_id=email_id)
        done = kind is not None and await repo.get_vector(session, email_id=email_id, kind=kind) is not None
    if kind is None or row is None or not row.text_body or (done and not replace):
        return False
    vector = await asyncio.to_thread(embed_text, settings.guard, row.text_body)
    if vector is None:
        return False
    sender = row.sender_address.lower() if row.sender_address else None
    domain = company_domain(sender, extra=frozenset(settings.history.free_mail_domains))
    async with db.transaction() as session:
        await repo.store(
            session,
            email_id=email_id,
            sender_address=sender,
            sender_domain=domain,
            model=MODEL_NAME,
            vector=vector,
            kind=kind,
        )
    return True
