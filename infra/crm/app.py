"""FastAPI application factory of the reference CRM."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from infra.crm.api import router
from infra.crm.errors import install_error_handlers
from infra.crm.runtime import CrmRuntime

logger = logging.getLogger(__name__)

TITLE = "mailspine reference CRM (HubSpot v3 subset)"
DESCRIPTION = (
    "A small CRM speaking a HubSpot CRM v3 compatible subset: contacts, companies, deals, tickets, "
    "notes and the v4 associations between them. Authenticate with `Authorization: Bearer crm_pat_...`; "
    "POST/PATCH/PUT writes accept an `Idempotency-Key` header. Invalid requests are answered 400 "
    "`VALIDATION_ERROR` (HubSpot's error body), never FastAPI's 422 shape."
)


def create_app(*, database_url: str) -> FastAPI:
    """Build the app. ``database_url`` is libpq-style (``postgresql://user@host:5432/db`` or
    ``postgresql://user:@/db?host=/socket/dir``); the schema must be migrated already
    (:func:`infra.crm.migrate.upgrade`). The engine is created on first use and disposed on shutdown.
    """
    runtime = CrmRuntime(database_url=database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("reference CRM starting")
        try:
            yield
        finally:
            await runtime.dispose()
            logger.info("reference CRM stopped")

    app = FastAPI(title=TITLE, description=DESCRIPTION, version="1.0.0", lifespan=lifespan)
    app.state.crm_runtime = runtime
    install_error_handlers(app)
    app.include_router(router)
    _document_errors_as_served(app)
    return app


def _document_errors_as_served(app: FastAPI) -> None:
    """Drop FastAPI's default 422 ``HTTPValidationError`` from the docs: validation errors are
    served as 400 with the HubSpot error body (see ``errors.py``); a documented 422 that remains is
    the idempotency-key reuse error."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if "HTTPValidationError" in str(responses.get("422", "")):
                        del responses["422"]
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
