"""Create and update endpoints of companies, tickets and deals (typed request bodies per type)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import store_objects
from infra.crm.deps import CompaniesWriter, DealsWriter, IdempotencyKeyHeader, Runtime, TicketsUser
from infra.crm.idempotency import idempotent_write
from infra.crm.object_ops import association_targets, link, not_found, require_targets
from infra.crm.objects import COMPANIES, DEALS, TICKETS, ObjectType
from infra.crm.responses import SimplePublicObject, error_responses
from infra.crm.schemas import AssociationInput, parse_object_id
from infra.crm.schemas_objects import (
    CompanyCreate,
    CompanyUpdate,
    DealCreate,
    DealUpdate,
    TicketCreate,
    TicketUpdate,
)
from infra.crm.serialize import crm_object
from infra.crm.tokens import Principal

router = APIRouter()

_ERRORS = error_responses(400, 401, 403, 404, 422)


async def _create(
    kind: ObjectType,
    *,
    properties: dict[str, str],
    associations: list[AssociationInput],
    request: Request,
    runtime: Runtime,
    principal: Principal,
    key: str | None,
) -> JSONResponse:
    targets = association_targets(kind, associations)
    values = {**kind.defaults, **properties}

    async def action(session: AsyncSession) -> dict[str, Any]:
        await require_targets(session, kind, targets)
        row = await store_objects.insert_object(session=session, kind=kind, properties=values)
        await link(session, kind, row.id, targets)
        return crm_object(row, kind)

    return await idempotent_write(
        runtime=runtime, request=request, principal=principal, key=key, status_code=201, action=action
    )


async def _update(
    kind: ObjectType,
    object_id: str,
    *,
    properties: dict[str, str],
    request: Request,
    runtime: Runtime,
    principal: Principal,
    key: str | None,
) -> JSONResponse:
    parsed = parse_object_id(object_id)

    async def action(session: AsyncSession) -> dict[str, Any]:
        row = None
        if parsed is not None:
            row = await store_objects.update_object(
                session=session, kind=kind, object_id=parsed, properties=properties
            )
        if row is None:
            raise not_found(kind, object_id)
        return crm_object(row, kind)

    return await idempotent_write(
        runtime=runtime, request=request, principal=principal, key=key, status_code=200, action=action
    )


@router.post(
    "/crm/v3/objects/companies",
    tags=["companies"],
    summary="Create a company",
    status_code=201,
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def create_company(
    body: CompanyCreate,
    request: Request,
    runtime: Runtime,
    principal: CompaniesWriter,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """`name` or `domain` is required. `associations` may link contacts (280), deals (342),
    tickets (340) or notes (189)."""
    return await _create(
        COMPANIES,
        properties=body.properties.as_dict(),
        associations=body.associations,
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )


@router.patch(
    "/crm/v3/objects/companies/{company_id}",
    tags=["companies"],
    summary="Update a company",
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def update_company(
    company_id: str,
    body: CompanyUpdate,
    request: Request,
    runtime: Runtime,
    principal: CompaniesWriter,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Merges the given properties into the company (`null` clears one)."""
    return await _update(
        COMPANIES,
        company_id,
        properties=body.properties.as_dict(),
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )


@router.post(
    "/crm/v3/objects/tickets",
    tags=["tickets"],
    summary="Create a ticket",
    status_code=201,
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def create_ticket(
    body: TicketCreate,
    request: Request,
    runtime: Runtime,
    principal: TicketsUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """`subject` and `hs_pipeline_stage` are required; `hs_pipeline` defaults to `0`.
    `associations` may link contacts (16), companies (339), deals (28) or notes (227)."""
    return await _create(
        TICKETS,
        properties=body.properties.as_dict(),
        associations=body.associations,
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )


@router.patch(
    "/crm/v3/objects/tickets/{ticket_id}",
    tags=["tickets"],
    summary="Update a ticket",
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def update_ticket(
    ticket_id: str,
    body: TicketUpdate,
    request: Request,
    runtime: Runtime,
    principal: TicketsUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Merges the given properties; move the ticket with `hs_pipeline_stage` (1-4)."""
    return await _update(
        TICKETS,
        ticket_id,
        properties=body.properties.as_dict(),
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )


@router.post(
    "/crm/v3/objects/deals",
    tags=["deals"],
    summary="Create a deal",
    status_code=201,
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def create_deal(
    body: DealCreate,
    request: Request,
    runtime: Runtime,
    principal: DealsWriter,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """`dealname` and `dealstage` are required; `pipeline` defaults to `default`.
    `associations` may link contacts (3), companies (341), tickets (27) or notes (213)."""
    return await _create(
        DEALS,
        properties=body.properties.as_dict(),
        associations=body.associations,
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )


@router.patch(
    "/crm/v3/objects/deals/{deal_id}",
    tags=["deals"],
    summary="Update a deal",
    response_model=SimplePublicObject,
    responses=_ERRORS,
)
async def update_deal(
    deal_id: str,
    body: DealUpdate,
    request: Request,
    runtime: Runtime,
    principal: DealsWriter,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Merges the given properties, e.g. `dealstage` or `amount`."""
    return await _update(
        DEALS,
        deal_id,
        properties=body.properties.as_dict(),
        request=request,
        runtime=runtime,
        principal=principal,
        key=idempotency_key,
    )
