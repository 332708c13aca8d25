"""All HTTP routes of the reference CRM: health plus the HubSpot v3 subset."""

from __future__ import annotations

from fastapi import APIRouter

from infra.crm import routes_contacts, routes_contacts_bulk, routes_notes
from infra.crm.responses import Health

health_router = APIRouter(tags=["health"])


@health_router.get("/health", response_model=Health)
async def health() -> dict[str, str]:
    """Liveness; needs no token and does not touch the database."""
    return {"status": "ok"}


router = APIRouter()
router.include_router(health_router)
router.include_router(routes_contacts_bulk.router)
router.include_router(routes_contacts.router)
router.include_router(routes_notes.router)
