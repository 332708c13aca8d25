"""Annotated FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from infra.crm.auth import require_scope
from infra.crm.runtime import CrmRuntime, get_runtime
from infra.crm.scopes import CONTACTS_READ, CONTACTS_WRITE, NOTES_READ, NOTES_WRITE
from infra.crm.tokens import Principal

Runtime = Annotated[CrmRuntime, Depends(get_runtime)]
ContactsReader = Annotated[Principal, Depends(require_scope(CONTACTS_READ))]
ContactsWriter = Annotated[Principal, Depends(require_scope(CONTACTS_WRITE))]
NotesReader = Annotated[Principal, Depends(require_scope(NOTES_READ))]
NotesWriter = Annotated[Principal, Depends(require_scope(NOTES_WRITE))]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Optional on POST/PATCH writes. A repeat with the same key and the same request replays "
            "the first response (header `Idempotent-Replayed: true`); keys expire after 24 hours."
        ),
    ),
]
