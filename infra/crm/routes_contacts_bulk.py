"""Contact search and batch upsert: ``/crm/v3/objects/contacts/search`` and ``/batch/upsert``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import store
from infra.crm.deps import ContactsReader as Reader
from infra.crm.deps import ContactsWriter as Writer
from infra.crm.deps import IdempotencyKeyHeader, Runtime
from infra.crm.idempotency import idempotent_write
from infra.crm.responses import BatchUpsertResponse, SearchResponse, error_responses
from infra.crm.schemas import BatchUpsertRequest, SearchRequest
from infra.crm.serialize import contact_object, iso

router = APIRouter(prefix="/crm/v3/objects/contacts", tags=["contacts"])


@router.post("/search", response_model=SearchResponse, responses=error_responses(400, 401, 403))
async def search_contacts(body: SearchRequest, runtime: Runtime, principal: Reader) -> JSONResponse:
    """Read-only: an ``Idempotency-Key`` header is accepted and ignored here."""
    offset = int(body.after or 0)
    async with runtime.session() as session:
        total, rows = await store.search_contacts(
            session=session, groups=body.filterGroups, offset=offset, limit=body.limit
        )
    result: dict[str, Any] = {
        "total": total,
        "results": [contact_object(row, requested=body.properties) for row in rows],
    }
    if offset + len(rows) < total:
        result["paging"] = {"next": {"after": str(offset + len(rows))}}
    return JSONResponse(result)


@router.post(
    "/batch/upsert", response_model=BatchUpsertResponse, responses=error_responses(400, 401, 403, 422)
)
async def batch_upsert(
    body: BatchUpsertRequest,
    request: Request,
    runtime: Runtime,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    started = datetime.now(UTC)

    async def action(session: AsyncSession) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {}
        for item in sorted(body.inputs, key=lambda entry: entry.id):  # fixed lock order: no deadlocks
            contact, created = await store.upsert_contact_by_email(
                session=session, email=item.id, properties=item.properties
            )
            results[item.id] = {**contact_object(contact), "new": created}
        return {
            "status": "COMPLETE",
            "results": [results[item.id] for item in body.inputs],
            "startedAt": iso(started),
            "completedAt": iso(datetime.now(UTC)),
        }

    return await idempotent_write(
        runtime=runtime,
        request=request,
        principal=principal,
        key=idempotency_key,
        status_code=200,
        action=action,
    )
