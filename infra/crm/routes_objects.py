"""Read endpoints of an object type, built per type: list, get, search and batch read.

No ``from __future__ import annotations`` here: FastAPI must see the per-type dependency objects
created inside :func:`read_router`, which string annotations would hide from it.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import store_objects
from infra.crm.auth import require_scope
from infra.crm.deps import AssociationsQuery, Runtime
from infra.crm.errors import OBJECT_NOT_FOUND, VALIDATION_ERROR, CrmError
from infra.crm.models import Contact, CrmObject
from infra.crm.object_ops import embedded_associations, not_found, requested_association_types
from infra.crm.objects import CONTACTS, ObjectType
from infra.crm.responses import (
    BatchReadResponse,
    CollectionResponse,
    SearchResponse,
    SimplePublicObjectWithAssociations,
    error_responses,
)
from infra.crm.schemas import SearchRequest, parse_object_id
from infra.crm.schemas_objects import BatchReadRequest
from infra.crm.serialize import crm_object, iso, split_csv
from infra.crm.tokens import Principal

Endpoint = Literal["list", "get", "search", "batch_read"]
ALL_ENDPOINTS: tuple[Endpoint, ...] = ("list", "get", "search", "batch_read")

PropertiesQuery = Annotated[str | None, Query(description="Comma-separated property names to return")]
Limit = Annotated[int, Query(ge=1, le=100)]
After = Annotated[
    str | None, Query(pattern=r"^[0-9]{1,18}$", description="`paging.next.after` of the last page")
]


async def _with_associations(
    session: AsyncSession,
    kind: ObjectType,
    row: CrmObject,
    targets: list[ObjectType],
    requested: list[str] | None,
) -> dict[str, Any]:
    result = crm_object(row, kind, requested=requested)
    if targets:
        block = await embedded_associations(session, kind, row.id, targets)
        if block:
            result["associations"] = block
    return result


async def _batch_rows(
    session: AsyncSession, kind: ObjectType, body: BatchReadRequest
) -> dict[str, CrmObject]:
    """The found objects, keyed by the input id (an object id, or an email with idProperty=email)."""
    if body.idProperty == "email" and kind is CONTACTS:
        emails = {item.id.strip().lower(): item.id for item in body.inputs}
        statement = select(Contact).where(Contact.email.in_(emails), Contact.archived.is_(False))
        found = (await session.execute(statement)).scalars()
        return {emails[row.email]: row for row in found if row.email is not None}
    if body.idProperty not in (None, "hs_object_id"):
        raise CrmError(
            400, VALIDATION_ERROR, f"idProperty {body.idProperty!r} is not supported for {kind.name}."
        )
    ids = {item.id: parse_object_id(item.id) for item in body.inputs}
    rows = await store_objects.get_objects(
        session=session,
        kind=kind,
        object_ids=[object_id for object_id in ids.values() if object_id is not None],
    )
    return {
        key: rows[object_id] for key, object_id in ids.items() if object_id is not None and object_id in rows
    }


_BATCH_READ_RESPONSES = error_responses(400, 401, 403)
_BATCH_READ_RESPONSES[207] = {"model": BatchReadResponse, "description": "Some ids were not found"}


def read_router(kind: ObjectType, *, endpoints: tuple[Endpoint, ...] = ALL_ENDPOINTS) -> APIRouter:
    """``GET /crm/v3/objects/{type}``, ``GET …/{id}``, ``POST …/search``, ``POST …/batch/read``."""
    router = APIRouter(prefix=f"/crm/v3/objects/{kind.name}", tags=[kind.name])
    Reader = Annotated[Principal, Depends(require_scope(kind.read_scope))]

    async def list_objects(
        runtime: Runtime,
        principal: Reader,
        limit: Limit = 10,
        after: After = None,
        properties: PropertiesQuery = None,
        associations: AssociationsQuery = None,
    ) -> JSONResponse:
        targets = requested_association_types(principal, kind, split_csv(associations))
        requested = split_csv(properties)
        async with runtime.session() as session:
            rows = await store_objects.list_objects(
                session=session, kind=kind, after=int(after) if after else None, limit=limit + 1
            )
            page = rows[:limit]
            result: dict[str, Any] = {
                "results": [await _with_associations(session, kind, row, targets, requested) for row in page]
            }
        if len(rows) > limit:
            result["paging"] = {"next": {"after": str(page[-1].id)}}
        return JSONResponse(result)

    async def get_object(
        object_id: str,
        runtime: Runtime,
        principal: Reader,
        properties: PropertiesQuery = None,
        associations: AssociationsQuery = None,
    ) -> JSONResponse:
        targets = requested_association_types(principal, kind, split_csv(associations))
        parsed = parse_object_id(object_id)
        async with runtime.session() as session:
            row = (
                None
                if parsed is None
                else await store_objects.get_object(session=session, kind=kind, object_id=parsed)
            )
            if row is None:
                raise not_found(kind, object_id)
            result = await _with_associations(session, kind, row, targets, split_csv(properties))
        return JSONResponse(result)

    async def search_objects(body: SearchRequest, runtime: Runtime, principal: Reader) -> JSONResponse:
        offset = int(body.after or 0)
        async with runtime.session() as session:
            total, rows = await store_objects.search_objects(
                session=session, kind=kind, groups=body.filterGroups, offset=offset, limit=body.limit
            )
        result: dict[str, Any] = {
            "total": total,
            "results": [crm_object(row, kind, requested=body.properties) for row in rows],
        }
        if offset + len(rows) < total:
            result["paging"] = {"next": {"after": str(offset + len(rows))}}
        return JSONResponse(result)

    async def batch_read(body: BatchReadRequest, runtime: Runtime, principal: Reader) -> JSONResponse:
        started = datetime.now(UTC)
        async with runtime.session() as session:
            found = await _batch_rows(session, kind, body)
        keys = list(dict.fromkeys(item.id for item in body.inputs))
        result: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [
                crm_object(found[key], kind, requested=body.properties) for key in keys if key in found
            ],
            "startedAt": iso(started),
            "completedAt": iso(datetime.now(UTC)),
        }
        missing = [key for key in keys if key not in found]
        if not missing:
            return JSONResponse(result)
        result["numErrors"] = 1
        result["errors"] = [
            {
                "status": "error",
                "category": OBJECT_NOT_FOUND,
                "message": f"Could not get some {kind.singular.upper()} objects, they may be deleted or not "
                "exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return JSONResponse(result, status_code=207)

    name = kind.singular
    if "list" in endpoints:
        router.add_api_route(
            "",
            list_objects,
            methods=["GET"],
            response_model=CollectionResponse,
            responses=error_responses(400, 401, 403),
            summary=f"List {kind.name}",
            description=f"{kind.label}s ordered by id; cursor paging with `limit` (1-100) and `after`.",
            operation_id=f"list_{kind.name}",
        )
    if "get" in endpoints:
        router.add_api_route(
            "/{object_id}",
            get_object,
            methods=["GET"],
            response_model=SimplePublicObjectWithAssociations,
            responses=error_responses(400, 401, 403, 404),
            summary=f"Read a {name}",
            operation_id=f"get_{name}",
        )
    if "search" in endpoints:
        router.add_api_route(
            "/search",
            search_objects,
            methods=["POST"],
            response_model=SearchResponse,
            responses=error_responses(400, 401, 403),
            summary=f"Search {kind.name}",
            description="Read-only: an `Idempotency-Key` header is accepted and ignored here.",
            operation_id=f"search_{kind.name}",
        )
    if "batch_read" in endpoints:
        router.add_api_route(
            "/batch/read",
            batch_read,
            methods=["POST"],
            response_model=BatchReadResponse,
            responses=_BATCH_READ_RESPONSES,
            summary=f"Read a batch of {kind.name}",
            description="Read-only: an `Idempotency-Key` header is accepted and ignored here.",
            operation_id=f"batch_read_{kind.name}",
        )
    return router
