"""Every side effect goes through here: exactly once per (thread, node, effect, payload).

1. Record the intent (committed) before the call, in one statement; the row counts the attempts.
2. A key that already succeeded is left as it is and its recorded result returned (a replay).
3. Call the tool with the key and the attempt number. Attempt > 1 means an earlier attempt's
   outcome is unknown (it crashed between 2 and 4): the tool reconciles with the remote system
   before acting (the CRM answers a repeated ``Idempotency-Key`` from its own record; the SMTP
   sender searches the Sent folder for the deterministic Message-ID; drafts upsert by it).
4. Record the result (committed) and append an audit entry in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel

from app.chaos import crash_point
from app.db import Database
from app.errors import ToolError
from app.hashing import payload_hash
from app.repo import audit, ledger

EffectCall = Callable[[str, int], Awaitable[dict[str, Any]]]  # (idempotency key, attempt) -> result


def idempotency_key(*, thread_id: str, node: str, effect: str, payload_digest: str) -> str:
    return hashlib.sha256(f"{thread_id}|{node}|{effect}|{payload_digest}".encode()).hexdigest()


async def run_effect(
    db: Database,
    *,
    thread_id: str,
    node: str,
    effect: str,
    payload: BaseModel,
    call: EffectCall,
    actor: str = "agent",
) -> tuple[str, str, dict[str, Any]]:
    """Returns (idempotency key, status, result). Raises the tool's error after recording it."""
    digest = payload_hash(payload)
    key = idempotency_key(thread_id=thread_id, node=node, effect=effect, payload_digest=digest)
    span = trace.get_current_span()
    async with db.transaction() as session:
        attempt = await ledger.record_intent(
            session,
            idempotency_key=key,
            thread_id=thread_id,
            node=node,
            action=effect,
            payload=payload.model_dump(mode="json"),
            payload_hash=digest,
        )
        if attempt is None:  # it succeeded before (a replay after a crash): return what it returned
            existing = await ledger.get_effect(session, idempotency_key=key)
            assert existing is not None
            span.add_event("ledger.replay", {"mailspine.effect": effect})
            return key, "replayed", dict(existing.result or {})
    crash_point("ledger.before_call", thread_id=thread_id, effect=effect, attempt=attempt)
    try:
        result = await call(key, attempt)
    except ToolError as exc:
        async with db.transaction() as session:
            await ledger.record_result(session, idempotency_key=key, status="failed", error=str(exc)[:1000])
        raise
    crash_point("ledger.after_call", thread_id=thread_id, effect=effect, attempt=attempt)
    async with db.transaction() as session:
        await ledger.record_result(session, idempotency_key=key, status="succeeded", result=result)
        await audit.append_audit(
            session,
            actor=actor,
            action=f"effect.{effect}",
            subject_type="thread",
            subject_id=thread_id,
            details={"idempotency_key": key, "payload_hash": digest, "attempt": attempt, "result": result},
            payload_sha256=digest,
        )
    return key, "succeeded", result
