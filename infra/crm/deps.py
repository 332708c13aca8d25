"""Annotated FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query

from infra.crm.auth import current_principal, require_scope
from infra.crm.runtime import CrmRuntime, get_runtime
from infra.crm.scopes import (
    COMPANIES_READ,
    COMPANIES_WRITE,
    CONTACTS_READ,
    CONTACTS_WRITE,
    DEALS_READ,
    DEALS_WRITE,
    NOTES_READ,
    NOTES_WRITE,
    TICKETS,
)
from infra.crm.tokens import Principal

Runtime = Annotated[CrmRuntime, Depends(get_runtime)]
ContactsReader = Annotated[Principal, Depends(require_scope(CONTACTS_READ))]
ContactsWriter = Annotated[Principal, Depends(require_scope(CONTACTS_WRITE))]
NotesReader = Annotated[Principal, Depends(require_scope(NOTES_READ))]
NotesWriter = Annotated[Principal, Depends(require_scope(NOTES_WRITE))]
CompaniesReader = Annotated[Principal, Depends(require_scope(COMPANIES_READ))]
CompaniesWriter = Annotated[Principal, Depends(require_scope(COMPANIES_WRITE))]
DealsReader = Annotated[Principal, Depends(require_scope(DEALS_READ))]
DealsWriter = Annotated[Principal, Depends(require_scope(DEALS_WRITE))]
TicketsUser = Annotated[Principal, Depends(require_scope(TICKETS))]  # HubSpot: one scope, read and write
Authenticated = Annotated[Principal, Depends(current_principal)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Optional on POST/PATCH/PUT writes. A repeat with the same key and the same request replays "
            "the first response (header `Idempotent-Replayed: true`); keys expire after 24 hours."
        ),
    ),
]
AssociationsQuery = Annotated[
    str | None,
    Query(description="Comma-separated object types whose associated ids to include, e.g. `notes,tickets`"),
]
