"""The Postgres checkpointer, with a strict allowlist of types it may revive from a checkpoint."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent.state import STATE_TYPES
from app.chaos import crash_point
from app.db import IDLE_CHECK_S


class Checkpointer(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` with the crash points of the chaos tests around each write (no-ops
    unless ``MAILSPINE_CHAOS`` is set in a dev/test environment; see ``app/chaos.py``), and with
    its writes serialised in the event loop instead of a worker thread (the two write methods are
    the library's own otherwise; tests/integration/test_checkpointer_writes.py compares them)."""

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        crash_point("checkpoint.put.before", thread_id=_thread(config), step=metadata.get("step"))
        # AsyncPostgresSaver.aput (langgraph-checkpoint-postgres 3.2) as it is, except that the
        # channel blobs are serialised here instead of in ``asyncio.to_thread`` (see aput_writes).
        configurable = config["configurable"].copy()
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        parent_id = configurable.pop("checkpoint_id", None)
        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        saved: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        # Primitive values stay inline in the checkpoint row; the rest go to the blobs table.
        blob_values = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[key] = copy["channel_values"].pop(key)
                copy["channel_values"][key] = True
            elif value is None or isinstance(value, str | int | float | bool):
                pass
            else:
                blob_values[key] = copy["channel_values"].pop(key)
        async with self._cursor(pipeline=True) as cur:
            if blob_versions := {k: v for k, v in new_versions.items() if k in blob_values}:
                await cur.executemany(
                    self.UPSERT_CHECKPOINT_BLOBS_SQL,
                    self._dump_blobs(thread_id, checkpoint_ns, blob_values, blob_versions),
                )
            await cur.execute(
                self.UPSERT_CHECKPOINTS_SQL,
                (
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    parent_id,
                    Jsonb(copy),
                    Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
                ),
            )
        crash_point("checkpoint.put.after", thread_id=_thread(config), step=metadata.get("step"))
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        crash_point("checkpoint.put.before", thread_id=_thread(config), task=task_path)
        # AsyncPostgresSaver.aput_writes (langgraph-checkpoint-postgres 3.2) as it is, except that
        # the writes are serialised here instead of in ``asyncio.to_thread``: a node's writes are a
        # few KB, and the hop to a worker thread and back (twice per graph step, waiting for the
        # GIL and the OS scheduler) cost more than the serialisation — a third of the spine's
        # per-email overhead on a busy machine (bench/runtime.py). Re-check on upgrades.
        configurable = config["configurable"]
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        params = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        async with self._cursor(pipeline=True) as cur:
            await cur.executemany(query, params)
        crash_point("checkpoint.put.after", thread_id=_thread(config), task=task_path)


class IdleCheck:
    """Check a pooled connection with a round trip only when it sat idle for ``idle_s`` or more.

    A check on every checkout was a third of all statements per email (a checkpoint write takes a
    connection per call). A connection broken within the window fails its one write; psycopg's
    pool discards a broken connection when it comes back, and the job is retried as transient.
    """

    def __init__(self, idle_s: float = IDLE_CHECK_S) -> None:
        self.idle_s = idle_s
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def check(self, conn: AsyncConnection[Any]) -> None:
        returned = self._returned.get(conn)
        if returned is not None and time.monotonic() - returned < self.idle_s:
            return
        await AsyncConnectionPool.check_connection(conn)


def _thread(config: RunnableConfig) -> str:
    return str(config.get("configurable", {}).get("thread_id", ""))


@asynccontextmanager
async def open_checkpointer(url: str, *, max_size: int = 10) -> AsyncIterator[AsyncPostgresSaver]:
    # AsyncPostgresSaver needs autocommit connections with dict rows; prepare_threshold=0 keeps it
    # working behind transaction-pooling proxies (pgbouncer). The check replaces connections a
    # Postgres restart broke, instead of failing the next checkpoint write with them.
    idle = IdleCheck()
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=idle.check,
        reset=idle.returned,
    )
    await pool.open(wait=True, timeout=30)
    try:
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))
        yield Checkpointer(pool, serde=serde)  # type: ignore[arg-type]
    finally:
        await pool.close()
