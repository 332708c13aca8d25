"""The CRM object types: their table, scopes, HubSpot names and system properties.

A path segment may name a type the way HubSpot accepts it: plural (``contacts``), singular
(``contact``) or object type id (``0-1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.crm import scopes
from infra.crm.models import Company, Contact, CrmObject, Deal, Note, Ticket


@dataclass(frozen=True, slots=True, eq=False)  # one instance per type: compared by identity
class ObjectType:
    name: str  # plural, as in the paths: "contacts"
    singular: str  # "contact" (association labels, messages)
    type_id: str  # HubSpot object type id: "0-1"
    model: type[CrmObject]
    read_scope: str
    write_scope: str
    created_property: str  # read-only system property names, as HubSpot calls them for this type
    modified_property: str
    defaults: dict[str, str] = field(default_factory=dict)  # filled in on create when absent

    @property
    def label(self) -> str:
        return self.singular.capitalize()


CONTACTS = ObjectType(
    name="contacts",
    singular="contact",
    type_id="0-1",
    model=Contact,
    read_scope=scopes.CONTACTS_READ,
    write_scope=scopes.CONTACTS_WRITE,
    created_property="createdate",
    modified_property="lastmodifieddate",
)
COMPANIES = ObjectType(
    name="companies",
    singular="company",
    type_id="0-2",
    model=Company,
    read_scope=scopes.COMPANIES_READ,
    write_scope=scopes.COMPANIES_WRITE,
    created_property="createdate",
    modified_property="hs_lastmodifieddate",
)
DEALS = ObjectType(
    name="deals",
    singular="deal",
    type_id="0-3",
    model=Deal,
    read_scope=scopes.DEALS_READ,
    write_scope=scopes.DEALS_WRITE,
    created_property="createdate",
    modified_property="hs_lastmodifieddate",
    defaults={"pipeline": "default"},
)
TICKETS = ObjectType(
    name="tickets",
    singular="ticket",
    type_id="0-5",
    model=Ticket,
    read_scope=scopes.TICKETS,
    write_scope=scopes.TICKETS,
    created_property="createdate",
    modified_property="hs_lastmodifieddate",
    defaults={"hs_pipeline": "0"},
)
NOTES = ObjectType(
    name="notes",
    singular="note",
    type_id="0-46",
    model=Note,
    read_scope=scopes.NOTES_READ,
    write_scope=scopes.NOTES_WRITE,
    created_property="hs_createdate",
    modified_property="hs_lastmodifieddate",
)

ALL_TYPES: tuple[ObjectType, ...] = (CONTACTS, COMPANIES, DEALS, TICKETS, NOTES)
_BY_ALIAS = {alias: kind for kind in ALL_TYPES for alias in (kind.name, kind.singular, kind.type_id)}


def resolve(name: str) -> ObjectType | None:
    """The object type a path segment names (case-insensitive), or None."""
    return _BY_ALIAS.get(name.strip().lower())
