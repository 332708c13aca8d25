"""Every side effect goes through here: exactly once per (thread, node, action, payload).

1. Look the key up: a recorded success is returned as is (a replay after a crash).
2. Record the intent (committed) before the call.
3. Call the tool with the key as its idempotency key. If an earlier attempt crashed between 2
   and 4, the outcome is unknown; the remote system reconciles it (the CRM answers a repeated
   ``Idempotency-Key`` from its own record; drafts are keyed by a deterministic Message-ID).
4. Record the result (committed) and append an audit entry in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace

from app.db import Database
from app.errors import ToolError
from app.hashing import payload_hash
from app.repo import audit, ledger
from tools.actions import Action

EffectCall = Callable[[str], Awaitable[dict[str, Any]]]


def idempotency_key(*, thread_id: str, node: str, action_kind: str, payload_digest: str) -> str:
    return hashlib.sha256(f"{thread_id}|{node}|{action_kind}|{payload_digest}".encode()).hexdigest()


async def run_effect(
    db: Database, *, thread_id: str, node: str, action: Action, call: EffectCall, actor: str = "agent"
) -> tuple[str, str, dict[str, Any]]:
    """Returns (idempotency key, status, result). Raises the tool's error after recording it."""
    digest = payload_hash(action)
    key = idempotency_key(thread_id=thread_id, node=node, action_kind=action.kind, payload_digest=digest)
    span = trace.get_current_span()
    async with db.transaction() as session:
        existing = await ledger.get_effect(session, idempotency_key=key)
        if existing is not None and existing.status == "succeeded":
            span.add_event("ledger.replay", {"mailspine.effect.action": action.kind})
            return key, "replayed", dict(existing.result or {})
        await ledger.record_intent(
            session,
            idempotency_key=key,
            thread_id=thread_id,
            node=node,
            action=action.kind,
            payload=action.model_dump(mode="json"),
            payload_hash=digest,
        )
    try:
        result = await call(key)
    except ToolError as exc:
        async with db.transaction() as session:
            await ledger.record_result(session, idempotency_key=key, status="failed", error=str(exc)[:1000])
        raise
    async with db.transaction() as session:
        await ledger.record_result(session, idempotency_key=key, status="succeeded", result=result)
        await audit.append_audit(
            session,
            actor=actor,
            action=f"effect.{action.kind}",
            subject_type="thread",
            subject_id=thread_id,
            details={"idempotency_key": key, "payload_hash": digest, "result": result},
        )
    return key, "succeeded", result
