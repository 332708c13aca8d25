"""The Postgres checkpointer, with a strict allowlist of types it may revive from a checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.state import STATE_TYPES
from app.chaos import crash_point


class Checkpointer(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` with the crash points of the chaos tests around each write (no-ops
    unless ``MAILSPINE_CHAOS`` is set in a dev/test environment; see ``app/chaos.py``)."""

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        crash_point("checkpoint.put.before", thread_id=_thread(config), step=metadata.get("step"))
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        crash_point("checkpoint.put.after", thread_id=_thread(config), step=metadata.get("step"))
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        crash_point("checkpoint.put.before", thread_id=_thread(config), task=task_path)
        await super().aput_writes(config, writes, task_id, task_path)
        crash_point("checkpoint.put.after", thread_id=_thread(config), task=task_path)


def _thread(config: RunnableConfig) -> str:
    return str(config.get("configurable", {}).get("thread_id", ""))


@asynccontextmanager
async def open_checkpointer(url: str, *, max_size: int = 10) -> AsyncIterator[AsyncPostgresSaver]:
    # AsyncPostgresSaver needs autocommit connections with dict rows; prepare_threshold=0 keeps it
    # working behind transaction-pooling proxies (pgbouncer). The check replaces connections a
    # Postgres restart broke, instead of failing the next checkpoint write with them.
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True, timeout=30)
    try:
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))
        yield Checkpointer(pool, serde=serde)  # type: ignore[arg-type]
    finally:
        await pool.close()
