"""``/crm/v3/objects/contacts`` endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import store
from infra.crm.deps import AssociationsQuery, IdempotencyKeyHeader, Runtime
from infra.crm.deps import ContactsReader as Reader
from infra.crm.deps import ContactsWriter as Writer
from infra.crm.errors import CONFLICT, OBJECT_NOT_FOUND, CrmError
from infra.crm.idempotency import idempotent_write
from infra.crm.models import Contact
from infra.crm.object_ops import (
    association_targets,
    embedded_associations,
    link,
    requested_association_types,
    require_targets,
)
from infra.crm.objects import CONTACTS
from infra.crm.responses import (
    CollectionResponse,
    SimplePublicObject,
    SimplePublicObjectWithAssociations,
    error_responses,
)
from infra.crm.schemas import ContactCreate, ContactInput, parse_object_id
from infra.crm.serialize import contact_object, split_csv

router = APIRouter(prefix="/crm/v3/objects/contacts", tags=["contacts"])

IdProperty = Annotated[
    Literal["email"] | None,
    Query(alias="idProperty", description="Look the contact up by email instead of id"),
]
PropertiesQuery = Annotated[str | None, Query(description="Comma-separated property names to return")]


def _not_found(contact_id: str) -> CrmError:
    return CrmError(404, OBJECT_NOT_FOUND, f"Contact {contact_id} does not exist.")


def _conflict(existing_id: int | None) -> CrmError:
    suffix = f" Existing ID: {existing_id}" if existing_id is not None else ""
    return CrmError(409, CONFLICT, f"Contact already exists.{suffix}")


async def _find(session: AsyncSession, contact_id: str, id_property: str | None) -> Contact | None:
    if id_property == "email":
        return await store.get_contact_by_email(session=session, email=contact_id)
    object_id = parse_object_id(contact_id)
    return None if object_id is None else await store.get_contact(session=session, contact_id=object_id)


@router.post(
    "",
    status_code=201,
    response_model=SimplePublicObject,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def create_contact(
    body: ContactCreate,
    request: Request,
    runtime: Runtime,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """`associations` may link companies (279), deals (4), tickets (15) or notes (201)."""
    targets = association_targets(CONTACTS, body.associations)

    async def action(session: AsyncSession) -> dict[str, Any]:
        await require_targets(session, CONTACTS, targets)
        contact = await store.insert_contact(session=session, properties=body.properties)
        if contact is None:
            existing = await store.get_contact_by_email(session=session, email=body.properties["email"])
            raise _conflict(existing.id if existing else None)
        await link(session, CONTACTS, contact.id, targets)
        return contact_object(contact)

    return await idempotent_write(
        runtime=runtime,
        request=request,
        principal=principal,
        key=idempotency_key,
        status_code=201,
        action=action,
    )


@router.get("", response_model=CollectionResponse, responses=error_responses(400, 401, 403))
async def list_contacts(
    runtime: Runtime,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    properties: PropertiesQuery = None,
) -> JSONResponse:
    async with runtime.session() as session:
        rows = await store.list_contacts(
            session=session, after=int(after) if after else None, limit=limit + 1
        )
    page = rows[:limit]
    requested = split_csv(properties)
    result: dict[str, Any] = {"results": [contact_object(row, requested=requested) for row in page]}
    if len(rows) > limit:
        result["paging"] = {"next": {"after": str(page[-1].id)}}
    return JSONResponse(result)


@router.get(
    "/{contact_id}",
    response_model=SimplePublicObjectWithAssociations,
    responses=error_responses(400, 401, 403, 404),
)
async def get_contact(
    contact_id: str,
    runtime: Runtime,
    principal: Reader,
    id_property: IdProperty = None,
    properties: PropertiesQuery = None,
    associations: AssociationsQuery = None,
) -> JSONResponse:
    """`?associations=notes,tickets,deals` adds the associated ids (each type needs its read scope)."""
    targets = requested_association_types(principal, CONTACTS, split_csv(associations))
    async with runtime.session() as session:
        contact = await _find(session, contact_id, id_property)
        if contact is None:
            raise _not_found(contact_id)
        result = contact_object(contact, requested=split_csv(properties))
        if targets:
            block = await embedded_associations(session, CONTACTS, contact.id, targets)
            if block:
                result["associations"] = block
    return JSONResponse(result)


@router.patch(
    "/{contact_id}",
    response_model=SimplePublicObject,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def update_contact(
    contact_id: str,
    body: ContactInput,
    request: Request,
    runtime: Runtime,
    principal: Writer,
    id_property: IdProperty = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    async def action(session: AsyncSession) -> dict[str, Any]:
        found = await _find(session, contact_id, id_property)
        if found is None:
            raise _not_found(contact_id)
        try:
            contact = await store.update_contact(
                session=session, contact_id=found.id, properties=body.properties
            )
        except store.EmailConflict as exc:
            raise _conflict(exc.existing_id) from exc
        if contact is None:
            raise _not_found(contact_id)
        return contact_object(contact)

    return await idempotent_write(
        runtime=runtime,
        request=request,
        principal=principal,
        key=idempotency_key,
        status_code=200,
        action=action,
    )
