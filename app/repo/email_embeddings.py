"""The history's queries: earlier related emails, their embeddings and full-text search.

``email_embeddings.embedding`` is ``vector(384)`` where the server has pgvector and ``real[]``
elsewhere (migration 0014); ``backend`` reads which from the catalogue. Every search is scoped to
one sender (``sender``: a lowercased address) or one company (``domain``; None for free-mail
senders) and to emails before ``before_id``, so one customer's planner never sees another's mail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import column, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.models import Email, EmailStatus

Backend = Literal["pgvector", "array"]
Scope = Literal["thread", "sender", "company"]
DIM = 384
_EE = table("email_embeddings", column("email_id"))
# The sender's domain, as migration 0014 indexes it.
_sender_domain: ColumnElement[str] = func.lower(func.split_part(Email.sender_address, "@", 2))
_SCOPE_EE = "(ee.sender_address = :sender OR ee.sender_domain = :domain)"
_SCOPE_EMAILS = "(e.sender_address = :sender OR lower(split_part(e.sender_address, '@', 2)) = :domain)"
_NOT_THREAD = "(CAST(:conversation AS text) IS NULL OR e.conversation_id IS DISTINCT FROM :conversation)"


def vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in values) + "]"


_backends: dict[str, Backend] = {}


async def backend(session: AsyncSession) -> Backend | None:
    """How embeddings are stored here; None when the table is missing (not migrated). Looked up
    once per database and process: the column's type is fixed by migration 0014."""
    url = getattr(session.bind, "url", None)  # an AsyncEngine; a bare connection is not cached
    key = str(url) if url is not None else None
    if key is not None and key in _backends:
        return _backends[key]
    column_type = (
        await session.execute(
            text(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = to_regclass('email_embeddings') AND attname = 'embedding'"
            )
        )
    ).scalar_one_or_none()
    if column_type is None:
        return None
    found: Backend = "pgvector" if str(column_type).startswith("vector") else "array"
    if key is not None:
        _backends[key] = found
    return found


async def store(
    session: AsyncSession,
    *,
    email_id: int,
    sender_address: str | None,
    sender_domain: str | None,
    model: str,
    vector: Sequence[float],
    kind: Backend,
) -> None:
    """Insert or replace the embedding of one email."""
    if len(vector) != DIM:
        raise ValueError(f"an email embedding has {DIM} dimensions, not {len(vector)}")
    value: object = vector_literal(vector) if kind == "pgvector" else [float(v) for v in vector]
    cast = "vector" if kind == "pgvector" else "real[]"
    await session.execute(
        text(
            "INSERT INTO email_embeddings (email_id, sender_address, sender_domain, model, embedding) "
            f"VALUES (:id, :sender, :domain, :model, CAST(:v AS {cast})) "
            "ON CONFLICT (email_id) DO UPDATE SET sender_address = EXCLUDED.sender_address, "
            "sender_domain = EXCLUDED.sender_domain, model = EXCLUDED.model, "
            "embedding = EXCLUDED.embedding, created_at = now()"
        ),
        {"id": email_id, "sender": sender_address, "domain": sender_domain, "model": model, "v": value},
    )


async def get_vector(session: AsyncSession, *, email_id: int, kind: Backend) -> list[float] | None:
    column = "embedding::text" if kind == "pgvector" else "embedding"
    value = (
        await session.execute(
            text(f"SELECT {column} FROM email_embeddings WHERE email_id = :id"), {"id": email_id}
        )
    ).scalar_one_or_none()
    if value is None:
        return None
    return [float(v) for v in (json.loads(value) if isinstance(value, str) else value)]


async def missing(session: AsyncSession, *, after_id: int, limit: int) -> list[Email]:
    """Emails with (non-empty) redacted text and no embedding yet, oldest first, after ``after_id``."""
    stmt = (
        select(Email)
        .where(
            Email.id > after_id,
            Email.text_body.is_not(None),
            Email.text_body != "",  # nothing to embed (an attachment-only email): never "missing"
            Email.status != EmailStatus.QUARANTINED,
            ~select(_EE.c.email_id).where(_EE.c.email_id == Email.id).exists(),
        )
        .order_by(Email.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def count_missing(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM emails e WHERE e.text_body IS NOT NULL AND e.text_body <> '' "
                    "AND e.status <> :q "
                    "AND NOT EXISTS (SELECT 1 FROM email_embeddings ee WHERE ee.email_id = e.id)"
                ),
                {"q": EmailStatus.QUARANTINED.value},
            )
        ).scalar_one()
    )


async def related(
    session: AsyncSession,
    *,
    scope: Scope,
    before_id: int,
    limit: int,
    conversation_id: str | None,
    sender: str | None,
    domain: str | None,
) -> list[Email]:
    """Earlier emails, newest first: in the conversation (``thread``), from the address outside the
    conversation (``sender``), or from the company domain but neither (``company``)."""
    stmt = select(Email).where(Email.id < before_id)
    outside = Email.conversation_id.is_distinct_from(conversation_id) if conversation_id else None
    if scope == "thread":
        if not conversation_id:
            return []
        stmt = stmt.where(Email.conversation_id == conversation_id)
    elif scope == "sender":
        if not sender:
            return []
        stmt = stmt.where(Email.sender_address == sender)
        stmt = stmt.where(outside) if outside is not None else stmt
    else:
        if not domain:
            return []
        stmt = stmt.where(_sender_domain == domain, Email.sender_address.is_distinct_from(sender))
        stmt = stmt.where(outside) if outside is not None else stmt
    rows = await session.execute(stmt.order_by(Email.id.desc()).limit(limit))
    return list(rows.scalars())


async def emails_by_id(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Email]:
    if not ids:
        return {}
    rows = await session.execute(select(Email).where(Email.id.in_(list(ids))))
    return {row.id: row for row in rows.scalars()}


@dataclass(frozen=True)
class SearchScope:
    """Which earlier emails a search may return: before ``before_id``, from ``sender`` or from the
    company ``domain`` (None: the sender only), outside ``conversation_id`` (the thread tool's)."""

    before_id: int
    sender: str | None
    domain: str | None
    conversation_id: str | None

    def params(self) -> dict[str, object]:
        return {
            "before": self.before_id,
            "sender": self.sender,
            "domain": self.domain,
            "conversation": self.conversation_id,
        }


async def nearest_pgvector(
    session: AsyncSession, *, query: Sequence[float], scope: SearchScope, limit: int
) -> list[tuple[int, float]]:
    """(email id, cosine similarity), most similar first; exact (no approximate index, see 0014)."""
    rows = await session.execute(
        text(
            "SELECT ee.email_id, 1 - (ee.embedding <=> CAST(:q AS vector)) AS similarity "
            "FROM email_embeddings ee JOIN emails e ON e.id = ee.email_id "
            f"WHERE ee.email_id < :before AND {_SCOPE_EE} AND {_NOT_THREAD} "
            "ORDER BY ee.embedding <=> CAST(:q AS vector), ee.email_id DESC LIMIT :limit"
        ),
        {**scope.params(), "q": vector_literal(query), "limit": limit},
    )
    return [(int(i), float(s)) for i, s in rows.all()]


async def candidate_vectors(
    session: AsyncSession, *, scope: SearchScope, limit: int
) -> list[tuple[int, list[float]]]:
    """The newest ``limit`` embedded emails in scope, for an in-process (numpy) comparison."""
    rows = await session.execute(
        text(
            "SELECT ee.email_id, ee.embedding FROM email_embeddings ee JOIN emails e ON e.id = ee.email_id "
            f"WHERE ee.email_id < :before AND {_SCOPE_EE} AND {_NOT_THREAD} "
            "ORDER BY ee.email_id DESC LIMIT :limit"
        ),
        {**scope.params(), "limit": limit},
    )
    return [(int(i), [float(x) for x in v]) for i, v in rows.all()]


async def fulltext(
    session: AsyncSession, *, words: Sequence[str], scope: SearchScope, limit: int
) -> list[tuple[int, float]]:
    """(email id, ts_rank) of earlier emails in scope sharing any of ``words`` (letters and digits
    only; the caller cleans them), best first."""
    if not words:
        return []
    rows = await session.execute(
        text(
            "SELECT e.id, ts_rank(to_tsvector('simple', coalesce(e.text_body, '')), q) AS rank "
            "FROM emails e, to_tsquery('simple', :q) q "
            f"WHERE e.id < :before AND {_SCOPE_EMAILS} AND {_NOT_THREAD} "
            "AND to_tsvector('simple', coalesce(e.text_body, '')) @@ q "
            "ORDER BY rank DESC, e.id DESC LIMIT :limit"
        ),
        {**scope.params(), "q": " | ".join(words), "limit": limit},
    )
    return [(int(i), float(r)) for i, r in rows.all()]
