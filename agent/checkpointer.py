"""The Postgres checkpointer, with a strict allowlist of types it may revive from a checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.state import STATE_TYPES


@asynccontextmanager
async def open_checkpointer(url: str, *, max_size: int = 10) -> AsyncIterator[AsyncPostgresSaver]:
    # AsyncPostgresSaver needs autocommit connections with dict rows; prepare_threshold=0 keeps it
    # working behind transaction-pooling proxies (pgbouncer).
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    await pool.open(wait=True, timeout=30)
    try:
        serde = JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))
        yield AsyncPostgresSaver(pool, serde=serde)  # type: ignore[arg-type]
    finally:
        await pool.close()
