"""HubSpot-defined default (unlabeled) association types between the supported object types.

Association types are directional: a contact→ticket association is type 15 and its inverse,
ticket→contact, is type 16. Both directions are stored, so either side can list the other.
Labelled types (e.g. "Primary" company, 1/2/5/6/25/26) and user-defined labels are not supported.
"""

from __future__ import annotations

from infra.crm.objects import ALL_TYPES, COMPANIES, CONTACTS, DEALS, NOTES, TICKETS, ObjectType

HUBSPOT_DEFINED = "HUBSPOT_DEFINED"

# (from type, to type) -> HubSpot's default association type id (the ids HubSpot documents).
DEFAULT_TYPE_IDS: dict[tuple[str, str], int] = {
    (CONTACTS.name, COMPANIES.name): 279,
    (COMPANIES.name, CONTACTS.name): 280,
    (CONTACTS.name, DEALS.name): 4,
    (DEALS.name, CONTACTS.name): 3,
    (CONTACTS.name, TICKETS.name): 15,
    (TICKETS.name, CONTACTS.name): 16,
    (CONTACTS.name, NOTES.name): 201,
    (NOTES.name, CONTACTS.name): 202,
    (COMPANIES.name, DEALS.name): 342,
    (DEALS.name, COMPANIES.name): 341,
    (COMPANIES.name, TICKETS.name): 340,
    (TICKETS.name, COMPANIES.name): 339,
    (COMPANIES.name, NOTES.name): 189,
    (NOTES.name, COMPANIES.name): 190,
    (DEALS.name, TICKETS.name): 27,
    (TICKETS.name, DEALS.name): 28,
    (DEALS.name, NOTES.name): 213,
    (NOTES.name, DEALS.name): 214,
    (TICKETS.name, NOTES.name): 227,
    (NOTES.name, TICKETS.name): 228,
}


def default_type_id(source: ObjectType, target: ObjectType) -> int | None:
    """The default association type from ``source`` to ``target``; None if they cannot be associated."""
    return DEFAULT_TYPE_IDS.get((source.name, target.name))


def target_of(source: ObjectType, type_id: int) -> str | None:
    """The name of the object type that association type ``type_id`` from ``source`` points to."""
    for (from_name, to_name), known in DEFAULT_TYPE_IDS.items():
        if from_name == source.name and known == type_id:
            return to_name
    return None


def supported_from(source: ObjectType) -> str:
    """Human-readable list of the types ``source`` accepts, for error messages."""
    singular = {kind.name: kind.singular for kind in ALL_TYPES}
    return ", ".join(
        f"{type_id} ({source.singular} to {singular[to_name]})"
        for (from_name, to_name), type_id in DEFAULT_TYPE_IDS.items()
        if from_name == source.name
    )


def label(source: ObjectType, target: ObjectType) -> str:
    """The v3 association ``type`` name, e.g. ``note_to_contact``."""
    return f"{source.singular}_to_{target.singular}"
