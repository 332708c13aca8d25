"""Rows to HubSpot v3 JSON objects (``{"id", "properties", "createdAt", "updatedAt", "archived"}``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from infra.crm.models import Association, Contact, CrmObject, Note
from infra.crm.objects import CONTACTS, NOTES, ObjectType


def iso(moment: datetime) -> str:
    """HubSpot timestamp format: ISO 8601 UTC with milliseconds and a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object(
    *,
    object_id: int,
    stored: dict[str, Any],
    system: dict[str, str],
    created_at: datetime,
    updated_at: datetime,
    archived: bool,
    requested: Sequence[str] | None,
) -> dict[str, Any]:
    """All stored properties, or only the requested ones (missing ones as null), plus system ones."""
    if requested:
        properties: dict[str, Any] = {name: stored.get(name) for name in requested}
    else:
        properties = dict(stored)
    properties.update(system)
    return {
        "id": str(object_id),
        "properties": properties,
        "createdAt": iso(created_at),
        "updatedAt": iso(updated_at),
        "archived": archived,
    }


def crm_object(row: CrmObject, kind: ObjectType, *, requested: Sequence[str] | None = None) -> dict[str, Any]:
    """Any object in the HubSpot shape, with the system properties HubSpot names for its type."""
    system = {
        "hs_object_id": str(row.id),
        kind.created_property: iso(row.created_at),
        kind.modified_property: iso(row.updated_at),
    }
    return _object(
        object_id=row.id,
        stored=row.properties,
        system=system,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived=row.archived,
        requested=requested,
    )


def contact_object(contact: Contact, *, requested: Sequence[str] | None = None) -> dict[str, Any]:
    return crm_object(contact, CONTACTS, requested=requested)


def note_object(note: Note, *, requested: Sequence[str] | None = None) -> dict[str, Any]:
    return crm_object(note, NOTES, requested=requested)


def association_results(associations: Sequence[Association]) -> list[dict[str, Any]]:
    """Group rows by target: ``[{"toObjectId": "1", "associationTypes": [...]}]`` (v4 shape)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in associations:
        grouped.setdefault(row.to_id, []).append(
            {"category": "HUBSPOT_DEFINED", "typeId": row.type_id, "label": None}
        )
    return [{"toObjectId": str(to_id), "associationTypes": types} for to_id, types in grouped.items()]


def split_csv(value: str | None) -> list[str] | None:
    """``properties=a,b`` query parameter to a list (None when absent or empty)."""
    if not value:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return names or None


def v4_association_results(associations: Sequence[Association]) -> list[dict[str, Any]]:
    """Like :func:`association_results`, with numeric ``toObjectId`` as HubSpot's v4 API returns it."""
    return [{**item, "toObjectId": int(item["toObjectId"])} for item in association_results(associations)]
