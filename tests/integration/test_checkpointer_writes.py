"""Our checkpointer writes exactly what the library's AsyncPostgresSaver writes.

``agent.checkpointer.Checkpointer`` re-implements ``aput`` and ``aput_writes`` to serialise in the
event loop instead of a worker thread (a speed fix, see its docstring). The same checkpoint and
writes go through both savers under two thread ids; every stored row must be the same but for
the thread id. A library upgrade that changes either method shows up here.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

from agent.checkpointer import Checkpointer, open_checkpointer
from agent.schemas import Extraction

pytestmark = pytest.mark.integration

TABLES = {
    "checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata",
    "checkpoint_blobs": "checkpoint_ns, channel, version, type, blob",
    "checkpoint_writes": "checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob",
}


def _checkpoints() -> tuple[Any, Any, Extraction]:
    extraction = Extraction.model_validate(
        {"intent": "order_status", "confidence": 0.9, "summary": "Where is order NW-1?", "language": "en"}
    )
    base = empty_checkpoint()
    first = {
        **base,
        "id": "1ef00000-0000-6000-8000-000000000001",
        "channel_values": {"outcome": "done", "count": 3, "extraction": extraction, "none": None},
        "channel_versions": {"outcome": 1, "count": 1, "extraction": 1, "none": 1},
    }
    second = {
        **first,
        "id": "1ef00000-0000-6000-8000-000000000002",
        "channel_values": {**first["channel_values"], "outcome": "review"},
        "channel_versions": {**first["channel_versions"], "outcome": 2},
    }
    return first, second, extraction


async def _write(saver: AsyncPostgresSaver, thread_id: str, first: Any, second: Any, extraction: Any) -> None:
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saved = await saver.aput(
        config, first, {"source": "loop", "step": 1}, {"outcome": 1, "count": 1, "extraction": 1}
    )
    await saver.aput_writes(saved, [("extraction", extraction), ("outcome", "review")], "task-1", "path")
    await saver.aput_writes(saved, [("__error__", "boom")], "task-2")
    await saver.aput(saved, second, {"source": "loop", "step": 2}, {"outcome": 2})


def _rows(url: str, thread_id: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            table: conn.execute(
                f"SELECT {columns} FROM {table} WHERE thread_id = %s ORDER BY {columns.split(', type')[0]}",
                (thread_id,),
            ).fetchall()
            for table, columns in TABLES.items()
        }


async def test_our_writes_match_the_library_row_for_row(database_url: str) -> None:
    ours, theirs = f"ours-{uuid.uuid4().hex[:8]}", f"lib-{uuid.uuid4().hex[:8]}"
    async with open_checkpointer(database_url) as saver:
        assert isinstance(saver, Checkpointer)
        data = _checkpoints()
        await _write(saver, ours, *data)
        library = AsyncPostgresSaver(saver.conn, serde=saver.serde)
        await _write(library, theirs, *data)
    mine, reference = _rows(database_url, ours), _rows(database_url, theirs)
    assert all(reference[table] for table in TABLES), reference  # the comparison compares something
    assert len(reference["checkpoints"]) == 2 and len(reference["checkpoint_writes"]) == 3
    for table in TABLES:
        for got, want in zip(mine[table], reference[table], strict=True):
            assert got == want, (table, {k: (got[k], want[k]) for k in got if got[k] != want[k]})
