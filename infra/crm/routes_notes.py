"""``/crm/v3/objects/notes`` create/read and the contact→notes association listing (v3 path).

List, search and batch read of notes come from :func:`infra.crm.routes_objects.read_router`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from infra.crm import store, store_notes
from infra.crm.deps import IdempotencyKeyHeader, Runtime
from infra.crm.deps import NotesReader as Reader
from infra.crm.deps import NotesWriter as Writer
from infra.crm.errors import OBJECT_NOT_FOUND, CrmError
from infra.crm.idempotency import idempotent_write
from infra.crm.object_ops import association_targets, link, require_targets
from infra.crm.objects import NOTES
from infra.crm.responses import AssociationsResponse, SimplePublicObject, error_responses
from infra.crm.schemas import NoteCreate, parse_object_id
from infra.crm.serialize import association_results, note_object, split_csv

router = APIRouter(tags=["notes"])


@router.post(
    "/crm/v3/objects/notes",
    status_code=201,
    response_model=SimplePublicObject,
    responses=error_responses(400, 401, 403, 404, 422),
)
async def create_note(
    body: NoteCreate,
    request: Request,
    runtime: Runtime,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    targets = association_targets(NOTES, body.associations)

    async def action(session: AsyncSession) -> dict[str, Any]:
        await require_targets(session, NOTES, targets)
        note = await store_notes.insert_note(session=session, properties=body.properties)
        await link(session, NOTES, note.id, targets)
        return note_object(note)

    return await idempotent_write(
        runtime=runtime,
        request=request,
        principal=principal,
        key=idempotency_key,
        status_code=201,
        action=action,
    )


@router.get(
    "/crm/v3/objects/notes/{note_id}",
    response_model=SimplePublicObject,
    responses=error_responses(401, 403, 404),
)
async def get_note(
    note_id: str,
    runtime: Runtime,
    principal: Reader,
    properties: Annotated[str | None, Query(description="Comma-separated names")] = None,
    associations: Annotated[str | None, Query(description="`contacts` to include")] = None,
) -> JSONResponse:
    async with runtime.session() as session:
        object_id = parse_object_id(note_id)
        note = None if object_id is None else await store_notes.get_note(session=session, note_id=object_id)
        if note is None:
            raise CrmError(404, OBJECT_NOT_FOUND, f"Note {note_id} does not exist.")
        result = note_object(note, requested=split_csv(properties))
        if "contacts" in (split_csv(associations) or []):
            rows = await store_notes.list_associations(
                session=session, from_type=store_notes.NOTES, from_id=note.id, to_type=store_notes.CONTACTS
            )
            result["associations"] = {
                "contacts": {"results": [{"id": str(row.to_id), "type": "note_to_contact"} for row in rows]}
            }
    return JSONResponse(result)


@router.get(
    "/crm/v3/objects/contacts/{contact_id}/associations/notes",
    response_model=AssociationsResponse,
    responses=error_responses(401, 403, 404),
    tags=["associations"],
)
async def list_contact_notes(contact_id: str, runtime: Runtime, principal: Reader) -> JSONResponse:
    async with runtime.session() as session:
        object_id = parse_object_id(contact_id)
        contact = None
        if object_id is not None:
            contact = await store.get_contact(session=session, contact_id=object_id)
        if contact is None:
            raise CrmError(404, OBJECT_NOT_FOUND, f"Contact {contact_id} does not exist.")
        rows = await store_notes.list_associations(
            session=session, from_type=store_notes.CONTACTS, from_id=contact.id, to_type=store_notes.NOTES
        )
    return JSONResponse({"results": association_results(rows)})
