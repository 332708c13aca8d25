"""``Idempotency-Key`` support for POST/PATCH writes.

The first request under a key (per token) stores its status code and JSON body in the SAME
transaction as its write. A repeat with the same method, path (incl. query) and body (SHA-256 of
the canonical JSON) gets the stored response back with ``Idempotent-Replayed: true`` and writes
nothing; a different request under the same key gets 422. Claiming a key is an
``INSERT .. ON CONFLICT`` on the unique ``(token_id, key)``, so a concurrent duplicate waits for the
first transaction and then replays it. Failed requests roll back, key included: they may be
retried with the same key. Keys older than 24 hours are ignored (the key is reclaimed by the next
request using it); ``purge_expired`` deletes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm.errors import CONFLICT, VALIDATION_ERROR, CrmError
from infra.crm.models import IdempotencyKey
from infra.crm.runtime import CrmRuntime
from infra.crm.tokens import Principal

logger = logging.getLogger(__name__)

KEY_TTL = timedelta(hours=24)
REPLAY_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

Action = Callable[[AsyncSession], Awaitable[Any]]


def body_sha256(body: bytes) -> str:
    """SHA-256 of the body; JSON is canonicalised first so key order and whitespace don't matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode("utf-8")
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


async def claim(
    *, session: AsyncSession, token_id: int, key: str, method: str, path: str, request_sha256: str
) -> IdempotencyKey | None:
    """Claim ``key`` for this request. Returns the earlier request's row, or None if we own the key."""
    values = insert(IdempotencyKey).values(
        token_id=token_id, key=key, method=method, path=path, request_sha256=request_sha256
    )
    statement = values.on_conflict_do_update(
        index_elements=[IdempotencyKey.token_id, IdempotencyKey.key],
        set_={
            "method": values.excluded.method,
            "path": values.excluded.path,
            "request_sha256": values.excluded.request_sha256,
            "status_code": null(),
            "response_json": null(),
            "created_at": func.now(),
        },
        where=IdempotencyKey.created_at < func.now() - KEY_TTL,
    ).returning(IdempotencyKey.id)
    if (await session.execute(statement)).scalar_one_or_none() is not None:
        return None
    existing = select(IdempotencyKey).where(IdempotencyKey.token_id == token_id, IdempotencyKey.key == key)
    return (await session.execute(existing, execution_options={"populate_existing": True})).scalar_one()


async def store_response(
    *, session: AsyncSession, token_id: int, key: str, status_code: int, body: Any
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.token_id == token_id, IdempotencyKey.key == key)
        .values(status_code=status_code, response_json=body)
    )


async def purge_expired(*, session: AsyncSession) -> int:
    """Delete keys older than ``KEY_TTL``; returns how many were deleted."""
    expired = IdempotencyKey.created_at < func.now() - KEY_TTL
    result = await session.execute(delete(IdempotencyKey).where(expired).returning(IdempotencyKey.id))
    return len(result.all())


def _replay(row: IdempotencyKey, *, method: str, path: str, request_sha256: str) -> JSONResponse:
    if (row.method, row.path, row.request_sha256) != (method, path, request_sha256):
        raise CrmError(
            422,
            VALIDATION_ERROR,
            "Idempotency-Key was already used with a different request "
            f"(first used for {row.method} {row.path}); use a new key for a new request.",
            errors=[
                {"message": "Idempotency-Key reused with a different request", "context": {"key": [row.key]}}
            ],
        )
    if row.status_code is None:
        raise CrmError(409, CONFLICT, "A request with this Idempotency-Key is still in progress.")
    logger.info("replaying idempotent response key=%s token_id=%s", row.key, row.token_id)
    return JSONResponse(row.response_json, status_code=row.status_code, headers={REPLAY_HEADER: "true"})


async def idempotent_write(
    *,
    runtime: CrmRuntime,
    request: Request,
    principal: Principal,
    key: str | None,
    status_code: int,
    action: Action,
) -> JSONResponse:
    """Run ``action`` in one transaction; with a key, store or replay its response (see module doc)."""
    if key is not None and not _VALID_KEY.match(key):
        raise CrmError(400, VALIDATION_ERROR, "Idempotency-Key must be 1-255 printable ASCII characters.")
    method = request.method
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    request_sha256 = body_sha256(await request.body())
    async with runtime.session() as session, session.begin():
        if key is not None:
            earlier = await claim(
                session=session,
                token_id=principal.token_id,
                key=key,
                method=method,
                path=path,
                request_sha256=request_sha256,
            )
            if earlier is not None:
                return _replay(earlier, method=method, path=path, request_sha256=request_sha256)
        body = await action(session)
        if key is not None:
            await store_response(
                session=session, token_id=principal.token_id, key=key, status_code=status_code, body=body
            )
    return JSONResponse(body, status_code=status_code)
