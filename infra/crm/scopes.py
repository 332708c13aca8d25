"""The OAuth-style scopes a CRM token can carry (HubSpot names)."""

from __future__ import annotations

from typing import Final

CONTACTS_READ: Final = "crm.objects.contacts.read"
CONTACTS_WRITE: Final = "crm.objects.contacts.write"
NOTES_READ: Final = "crm.objects.notes.read"
NOTES_WRITE: Final = "crm.objects.notes.write"

ALL_SCOPES: Final[frozenset[str]] = frozenset({CONTACTS_READ, CONTACTS_WRITE, NOTES_READ, NOTES_WRITE})


def validate_scopes(scopes: list[str]) -> list[str]:
    """Return the scopes de-duplicated and sorted; raise ValueError on unknown scopes."""
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known scopes: {sorted(ALL_SCOPES)}")
    if not cleaned:
        raise ValueError("a token needs at least one scope")
    return cleaned
