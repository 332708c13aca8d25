"""Process-wide dependencies for workers: database, models, tools, checkpointer and the graph."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from agent.checkpointer import open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.models.factory import build_models
from app.db import Database
from app.settings import Settings
from tools.crm import CrmClient


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    ctx: Context
    graph: CompiledStateGraph[Any, Any, Any, Any]


@asynccontextmanager
async def open_services(settings: Settings, *, database_url: str) -> AsyncIterator[Services]:
    db = Database(database_url, pool_size=max(5, settings.worker_concurrency + 2))
    crm = CrmClient(
        base_url=settings.crm_base_url,
        token=settings.crm_token.get_secret_value() if settings.crm_token else None,
        timeout_s=settings.crm_timeout_s,
    )
    try:
        async with open_checkpointer(db.url, max_size=max(4, settings.worker_concurrency + 1)) as saver:
            ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings)
            yield Services(settings=settings, db=db, ctx=ctx, graph=build_graph(saver))
    finally:
        await crm.aclose()
        await db.dispose()
