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
from tools.ratelimit import RateLimiter
from tools.registry import ToolBox, tool_credential
from tools.secrets import build_provider, smtp_account


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    ctx: Context
    graph: CompiledStateGraph[Any, Any, Any, Any]


@dataclass(frozen=True)
class PoolSizes:
    db_pool: int  # SQLAlchemy's pool_size
    db_overflow: int  # SQLAlchemy's max_overflow
    checkpoints: int  # the checkpointer pool's max_size


def pool_sizes(settings: Settings) -> PoolSizes:
    """A worker's connection pools. By default one connection per job slot in each, and 10 of
    overflow; with ``worker_db_connections`` N, N in all (at least 2 each), no overflow: jobs
    beyond that wait for a connection, which they hold only for a transaction or a checkpoint
    write, not while the model answers."""
    budget = settings.worker_db_connections
    if budget == 0:
        concurrency = settings.worker_concurrency
        return PoolSizes(db_pool=max(5, concurrency + 2), db_overflow=10, checkpoints=max(4, concurrency + 1))
    db_pool = max(2, budget // 2)
    return PoolSizes(db_pool=db_pool, db_overflow=0, checkpoints=max(2, budget - db_pool))


@asynccontextmanager
async def open_services(settings: Settings, *, database_url: str) -> AsyncIterator[Services]:
    pools = pool_sizes(settings)
    db = Database(database_url, pool_size=pools.db_pool, max_overflow=pools.db_overflow)
    # Each CRM client gets its own tool's credential and no other (tools/secrets.py).
    secrets = build_provider(settings)
    settings = settings.model_copy(update={"smtp": smtp_account(settings, secrets)})
    write_token, read_token = (
        tool_credential(secrets, "crm_upsert_contact"),
        tool_credential(secrets, "crm_find_contact"),
    )
    crm = CrmClient(
        base_url=settings.crm_base_url,
        token=write_token.get_secret_value() if write_token else None,
        timeout_s=settings.crm_timeout_s,
        credential="crm_write",
    )
    crm_reader = (
        CrmClient(
            base_url=settings.crm_base_url,
            token=read_token.get_secret_value(),
            timeout_s=settings.crm_timeout_s,
            credential="crm_read",
        )
        if read_token
        else None
    )
    tools = tool_box(settings, db)
    try:
        async with open_checkpointer(db.url, max_size=pools.checkpoints) as saver:
            ctx = Context(
                db=db,
                models=build_models(settings),
                crm=crm,
                settings=settings,
                tools=tools,
                crm_reader=crm_reader,
            )
            yield Services(settings=settings, db=db, ctx=ctx, graph=build_graph(saver))
    finally:
        await crm.aclose()
        if crm_reader is not None:
            await crm_reader.aclose()
        await db.dispose()


def tool_box(settings: Settings, db: Database) -> ToolBox:
    """The node bindings and the shared rate limits of this deployment (tools/registry.py)."""
    return ToolBox(
        bindings=settings.tools.bindings,
        limiter=RateLimiter(db) if settings.tools.rate_limits else None,
        rates=settings.tools.rates,
    )
