"""The OAuth-style scopes a CRM token can carry (HubSpot names).

HubSpot has a read/write pair per object type, except tickets: one ``tickets`` scope grants both.
"""

from __future__ import annotations

from typing import Final

CONTACTS_READ: Final = "crm.objects.contacts.read"
CONTACTS_WRITE: Final = "crm.objects.contacts.write"
NOTES_READ: Final = "crm.objects.notes.read"
NOTES_WRITE: Final = "crm.objects.notes.write"
COMPANIES_READ: Final = "crm.objects.companies.read"
COMPANIES_WRITE: Final = "crm.objects.companies.write"
DEALS_READ: Final = "crm.objects.deals.read"
DEALS_WRITE: Final = "crm.objects.deals.write"
TICKETS: Final = "tickets"

ALL_SCOPES: Final[frozenset[str]] = frozenset(
    {
        CONTACTS_READ,
        CONTACTS_WRITE,
        NOTES_READ,
        NOTES_WRITE,
        COMPANIES_READ,
        COMPANIES_WRITE,
        DEALS_READ,
        DEALS_WRITE,
        TICKETS,
    }
)


def validate_scopes(scopes: list[str]) -> list[str]:
    """Return the scopes de-duplicated and sorted; raise ValueError on unknown scopes."""
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in ALL_SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; known scopes: {sorted(ALL_SCOPES)}")
    if not cleaned:
        raise ValueError("a token needs at least one scope")
    return cleaned
