"""v4 associations between any two records: create the default association, list, remove.

Scopes: listing needs the read scope of both object types; creating or removing needs the write
scope of the ``from`` type and the read scope of the ``to`` type. Both directions are stored, so
``PUT contacts/1/…/tickets/2`` also makes contact 1 show up under ticket 2.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import association_types, store_associations, store_objects
from infra.crm.auth import check_scopes
from infra.crm.deps import Authenticated, IdempotencyKeyHeader, Runtime
from infra.crm.errors import VALIDATION_ERROR, CrmError
from infra.crm.idempotency import idempotent_write
from infra.crm.object_ops import not_found, object_type
from infra.crm.objects import ObjectType
from infra.crm.responses import DefaultAssociationResponse, V4AssociationsPage, error_responses
from infra.crm.schemas import parse_object_id
from infra.crm.serialize import iso, v4_association_results

router = APIRouter(prefix="/crm/v4/objects", tags=["associations"])

PAGE_LIMIT = 500


def _pair(from_type: str, to_type: str) -> tuple[ObjectType, ObjectType]:
    source, target = object_type(from_type), object_type(to_type)
    if association_types.default_type_id(source, target) is None:
        raise CrmError(400, VALIDATION_ERROR, f"{source.name} cannot be associated with {target.name}.")
    return source, target


async def _require(session: AsyncSession, kind: ObjectType, object_id: str) -> int:
    """The id of an existing object, share-locked until commit (404 otherwise)."""
    parsed = parse_object_id(object_id)
    if parsed is None or not await store_objects.lock_existing(
        session=session, kind=kind, object_ids=[parsed]
    ):
        raise not_found(kind, object_id)
    return parsed


def _spec(source_id: int, target_id: int, type_id: int) -> dict[str, Any]:
    return {
        "from": {"id": str(source_id)},
        "to": {"id": str(target_id)},
        "associationSpec": {
            "associationCategory": association_types.HUBSPOT_DEFINED,
            "associationTypeId": type_id,
        },
    }


@router.put(
    "/{from_type}/{from_id}/associations/default/{to_type}/{to_id}",
    response_model=DefaultAssociationResponse,
    responses=error_responses(400, 401, 403, 404, 422),
    summary="Associate two records (default type)",
)
async def create_default_association(
    from_type: str,
    from_id: str,
    to_type: str,
    to_id: str,
    request: Request,
    runtime: Runtime,
    principal: Authenticated,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Creates the HubSpot-defined default association in both directions; repeating it is a no-op.
    Object types may be given as `contacts`, `contact` or `0-1`."""
    source, target = _pair(from_type, to_type)
    check_scopes(principal, source.write_scope, target.read_scope)
    started = datetime.now(UTC)

    async def action(session: AsyncSession) -> dict[str, Any]:
        source_id = await _require(session, source, from_id)
        target_id = await _require(session, target, to_id)
        forward, inverse = await store_associations.associate(
            session=session, source=source, source_id=source_id, target=target, target_id=target_id
        )
        return {
            "status": "COMPLETE",
            "results": [_spec(source_id, target_id, forward), _spec(target_id, source_id, inverse)],
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


@router.delete(
    "/{from_type}/{from_id}/associations/{to_type}/{to_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404),
    summary="Remove all associations between two records",
)
async def delete_associations(
    from_type: str, from_id: str, to_type: str, to_id: str, runtime: Runtime, principal: Authenticated
) -> Response:
    """Removes both directions; 204 also when they were not associated."""
    source, target = _pair(from_type, to_type)
    check_scopes(principal, source.write_scope, target.read_scope)
    async with runtime.session() as session, session.begin():
        source_id = await _require(session, source, from_id)
        target_id = await _require(session, target, to_id)
        await store_associations.dissociate(
            session=session, source=source, source_id=source_id, target=target, target_id=target_id
        )
    return Response(status_code=204)


@router.get(
    "/{from_type}/{from_id}/associations/{to_type}",
    response_model=V4AssociationsPage,
    responses=error_responses(400, 401, 403, 404),
    summary="List the records associated with a record",
)
async def list_associations(
    from_type: str,
    from_id: str,
    to_type: str,
    runtime: Runtime,
    principal: Authenticated,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> JSONResponse:
    """Ordered by the associated record's id; cursor paging with `limit` (1-500) and `after`.
    Read the records themselves with `POST /crm/v3/objects/{to_type}/batch/read`."""
    source, target = _pair(from_type, to_type)
    check_scopes(principal, source.read_scope, target.read_scope)
    async with runtime.session() as session:
        parsed = parse_object_id(from_id)
        if (
            parsed is None
            or await store_objects.get_object(session=session, kind=source, object_id=parsed) is None
        ):
            raise not_found(source, from_id)
        rows, next_after = await store_associations.list_page(
            session=session,
            source=source,
            source_id=parsed,
            target=target,
            after=int(after) if after else None,
            limit=limit,
        )
    result: dict[str, Any] = {"results": v4_association_results(rows)}
    if next_after is not None:
        result["paging"] = {"next": {"after": str(next_after)}}
    return JSONResponse(result)
