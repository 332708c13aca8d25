"""Per-application database runtime: a lazily created async engine and its session factory."""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.crm.dburl import to_sqlalchemy_url

logger = logging.getLogger(__name__)


class CrmRuntime:
    """Holds the engine of one app. The engine is created on first use (creating it does not
    connect), so the app also works when lifespan events are not run; ``dispose`` is called by the
    app's lifespan on shutdown."""

    def __init__(self, *, database_url: str) -> None:
        self._url = to_sqlalchemy_url(database_url)
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self._url, pool_pre_ping=True)
            logger.debug("created CRM database engine")
        return self._engine

    def session(self) -> AsyncSession:
        if self._sessions is None:
            self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        return self._sessions()

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            logger.debug("disposed CRM database engine")
        self._engine = None
        self._sessions = None


def get_runtime(request: Request) -> CrmRuntime:
    runtime = request.app.state.crm_runtime
    assert isinstance(runtime, CrmRuntime)
    return runtime
