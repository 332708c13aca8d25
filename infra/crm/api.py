"""All HTTP routes of the reference CRM: health plus the HubSpot v3/v4 subset."""

from __future__ import annotations

from fastapi import APIRouter

from infra.crm import (
    routes_associations,
    routes_contacts,
    routes_contacts_bulk,
    routes_notes,
    routes_records,
    routes_token_info,
)
from infra.crm.objects import COMPANIES, CONTACTS, DEALS, NOTES, TICKETS
from infra.crm.responses import Health
from infra.crm.routes_objects import read_router

health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=Health)
async def health() -> dict[str, str]:
    """Liveness; needs no token and does not touch the database."""
    return {"status": "ok"}


router = APIRouter()
router.include_router(health_router)
# Contacts and notes keep their own create/read routes; the generic ones fill in what they lack.
router.include_router(routes_contacts_bulk.router)
router.include_router(routes_contacts.router)
router.include_router(read_router(CONTACTS, endpoints=("batch_read",)))
router.include_router(routes_notes.router)
router.include_router(read_router(NOTES, endpoints=("list", "search", "batch_read")))
router.include_router(routes_records.router)
for kind in (COMPANIES, TICKETS, DEALS):
    router.include_router(read_router(kind))
router.include_router(routes_associations.router)
router.include_router(routes_token_info.router)
