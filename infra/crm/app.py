"""FastAPI application factory of the reference CRM."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.crm.api import router
from infra.crm.errors import install_error_handlers
from infra.crm.runtime import CrmRuntime

logger = logging.getLogger(__name__)

TITLE = "mailspine reference CRM (HubSpot v3 subset)"
DESCRIPTION = (
    "A small CRM speaking a HubSpot CRM v3 compatible subset: contacts, notes and their "
    "associations. Authenticate with `Authorization: Bearer crm_pat_...`; POST/PATCH accept an "
    "`Idempotency-Key` header."
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
    return app
