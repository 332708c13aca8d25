"""Checkpoint retention on a real stack: finished threads keep exactly their final checkpoint.

The demo mailbox is processed once by a real worker (offline model, CRM over HTTP); the tests then
prune in-process against the same database. They run in file order: the dry run first, on a
database nothing has pruned yet.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from agent.checkpoint_stats import checkpoint_stats
from agent.checkpointer import open_checkpointer
from agent.graph import build_graph
from agent.retention import PruneReport, prune_checkpoints
from app import tasks
from app.db import Database
from app.services import Services
from app.settings import REPO_ROOT, Settings
from tests.integration.test_pipeline import (
    crm_notes_for,
    email_status,
    pending_review_with_crm_write,
    settle,
    wait_for,
)
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration
LOGS = REPO_ROOT / "var" / "test" / "logs"
MAX_BYTES_PER_FINISHED_EMAIL = 64 * 1024  # the durable-runtime issue's storage target
KEYS = {
    "checkpoints": "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id",
    "checkpoint_blobs": "thread_id, checkpoint_ns, channel, version",
    "checkpoint_writes": "thread_id, checkpoint_ns, checkpoint_id, task_id, idx",
}
# mailspine's own records: retention must never touch a row of them.
OURS = ("emails", "runs", "reviews", "side_effects", "outbound_messages", "audit_log")


@pytest.fixture(scope="module")
def stack(pg_server_url: str) -> Iterator[Stack]:
    with running_stack(pg_server_url, LOGS / "retention") as s:
        s.start_worker()
        s.start_api()
        counts = settle(s, s.ingest(DEMO_MAILBOX))
        assert counts.get("done", 0) >= 10 and counts.get("review", 0) >= 3, counts
        yield s


def checkpoint_rows(stack: Stack, threads: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    where = "" if threads is None else "WHERE thread_id = ANY(%s)"
    params = () if threads is None else (threads,)
    return {
        table: sorted(
            stack.sql(f"SELECT {cols} FROM {table} {where}", *params)
        )  # keys first: no None compared
        for table, cols in KEYS.items()
    }


def what_keep_latest_keeps(stack: Stack, threads: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Each thread's latest checkpoint (its parent gone), the blobs it names and its own writes."""
    heads = (
        "(SELECT DISTINCT ON (thread_id, checkpoint_ns) thread_id, checkpoint_ns, checkpoint_id, checkpoint "
        "FROM checkpoints WHERE thread_id = ANY(%s) ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC) h"
    )
    on = "x.thread_id = h.thread_id AND x.checkpoint_ns = h.checkpoint_ns"
    kept = {
        "checkpoints": f"SELECT h.thread_id, h.checkpoint_ns, h.checkpoint_id, NULL FROM {heads}",
        "checkpoint_blobs": f"SELECT {_cols('checkpoint_blobs')} FROM checkpoint_blobs x JOIN {heads} "
        f"ON {on} AND h.checkpoint -> 'channel_versions' ->> x.channel = x.version",
        "checkpoint_writes": f"SELECT {_cols('checkpoint_writes')} FROM checkpoint_writes x JOIN {heads} "
        f"ON {on} AND x.checkpoint_id = h.checkpoint_id",
    }
    return {table: sorted(stack.sql(sql, threads)) for table, sql in kept.items()}


def _cols(table: str) -> str:
    return ", ".join(f"x.{c.strip()}" for c in KEYS[table].split(","))


def our_rows(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    return {table: stack.sql(f"SELECT * FROM {table} ORDER BY id") for table in OURS}


def threads_with(stack: Stack, *statuses: str) -> list[str]:
    rows = stack.sql(
        "SELECT r.thread_id FROM runs r JOIN emails e ON e.id = r.email_id "
        "WHERE e.status = ANY(%s) AND EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = r.thread_id) "
        "ORDER BY r.id",
        list(statuses),
    )
    return [t for (t,) in rows]


def db_now(stack: Stack) -> datetime:
    return cast(datetime, stack.sql("SELECT clock_timestamp()")[0][0])


async def final_states(url: str, threads: list[str]) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """What ``graph.aget_state`` returns for each thread: its values and the nodes still to run."""
    async with open_checkpointer(url, max_size=2) as saver:
        graph = build_graph(saver)
        states = {}
        for thread_id in threads:
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
            states[thread_id] = (snapshot.values, snapshot.next)
        return states


async def prune(stack: Stack, **kwargs: Any) -> PruneReport:
    return await prune_checkpoints(stack.url, now=db_now(stack), **{"older_than_s": 0, **kwargs})


async def test_dry_run_and_the_retention_window_delete_nothing(stack: Stack) -> None:
    before = checkpoint_rows(stack)
    finished = threads_with(stack, "done", "rejected", "failed", "quarantined")

    dry = await prune(stack, dry_run=True, batch=7)  # several batches
    assert dry.dry_run and dry.threads == len(finished) and dry.checkpoints_deleted > len(finished)
    assert dry.writes_deleted > 0 and dry.blobs_deleted > 0 and dry.bytes_after < dry.bytes_before
    assert checkpoint_rows(stack) == before

    # Everything finished seconds ago: an hour's retention (the periodic task's setting) keeps it all.
    settings = Settings(env="test", database_url=stack.url, checkpoint_retention_s=3600, _env_file=None)
    db = Database(stack.url)
    tasks.bind_services(cast(Services, SimpleNamespace(db=db, settings=settings)))
    try:
        done = await tasks.prune_checkpoints.func(None, timestamp=0)  # type: ignore[arg-type]
    finally:
        tasks.bind_services(None)
        await db.dispose()
    assert done == dict.fromkeys(
        ("threads", "checkpoints_deleted", "writes_deleted", "blobs_deleted", "bytes_freed"), 0
    )
    assert checkpoint_rows(stack) == before


async def test_prune_keeps_final_state_and_leaves_threads_in_review_alone(stack: Stack) -> None:
    finished = threads_with(stack, "done", "rejected", "failed", "quarantined")
    in_review = threads_with(stack, "review")
    assert len(finished) >= 10 and len(in_review) >= 3
    states = await final_states(stack.url, finished + in_review)
    review_rows, ours = checkpoint_rows(stack, in_review), our_rows(stack)
    stats = await _stats(stack.url)
    assert stats.finished.checkpoints > stats.finished.threads == len(finished)

    expected = what_keep_latest_keeps(stack, finished)
    dry = await prune(stack, dry_run=True)
    report = await prune(stack, batch=5)
    assert dataclasses.replace(dry, dry_run=False) == report  # a dry run says exactly what happens
    assert report.threads == len(finished) and report.skipped == 0

    per_thread = dict(stack.sql("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"))
    assert {t: per_thread[t] for t in finished} == dict.fromkeys(finished, 1)
    assert checkpoint_rows(stack, finished) == expected
    assert await final_states(stack.url, finished + in_review) == states
    for thread_id in finished:
        values, next_nodes = states[thread_id]
        [(plan, outcome)] = stack.sql("SELECT plan, outcome FROM runs WHERE thread_id = %s", thread_id)
        assert next_nodes == () and values["outcome"] == outcome
        assert (values["plan"].model_dump(mode="json") if values.get("plan") else None) == plan
    assert checkpoint_rows(stack, in_review) == review_rows  # not finished: not a row touched
    assert our_rows(stack) == ours  # emails, runs, reviews, ledger, drafts, audit log

    after = await _stats(stack.url)
    assert after.finished.checkpoints == after.finished.threads == len(finished)
    assert after.finished.total_bytes == stats.finished.total_bytes - report.bytes_before + report.bytes_after
    assert after.finished.max_bytes <= MAX_BYTES_PER_FINISHED_EMAIL, after.finished
    assert after.sizes["open"] == stats.sizes["open"]

    pruned = checkpoint_rows(stack)
    assert await prune(stack) == PruneReport()  # idempotent
    # The saver's own keep_latest prune (langgraph-checkpoint-postgres >= 3.2) finds nothing more.
    async with open_checkpointer(stack.url, max_size=2) as saver:
        await saver.aprune(finished, strategy="keep_latest")
    assert checkpoint_rows(stack) == pruned


async def test_a_thread_in_review_resumes_after_a_prune_then_is_pruned_itself(stack: Stack) -> None:
    await prune(stack)
    review = pending_review_with_crm_write(stack)
    thread_id, address = review["thread_id"], review["sender"]
    checkpoints_before = len(checkpoint_rows(stack, [thread_id])["checkpoints"])
    assert checkpoints_before > 1 and crm_notes_for(stack, address) == 0

    answer = stack.api.post(
        f"/v1/reviews/{review['id']}/decision",
        json={"decision": "approve", "payload_hash": review["payload_hash"]},
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: email_status(stack, review["email_id"]) == "done", what="resumed thread to finish")
    assert crm_notes_for(stack, address) == 1
    effects = stack.sql("SELECT status, attempts FROM side_effects WHERE thread_id = %s", thread_id)
    assert effects and all(row == ("succeeded", 1) for row in effects)
    assert len(checkpoint_rows(stack, [thread_id])["checkpoints"]) > checkpoints_before

    report = await prune(stack)
    assert report.threads == 1 and report.checkpoints_deleted > checkpoints_before
    assert len(checkpoint_rows(stack, [thread_id])["checkpoints"]) == 1
    values, next_nodes = (await final_states(stack.url, [thread_id]))[thread_id]
    assert next_nodes == () and values["decision"].decision == "approve"
    assert values["outcome"].startswith("approved by") and len(values["effects"]) == len(effects)
    assert (await _stats(stack.url)).finished.max_bytes <= MAX_BYTES_PER_FINISHED_EMAIL


def test_cli_prune_and_stats(stack: Stack) -> None:
    def mailspine(*args: str) -> str:
        env = {
            **os.environ,
            "DATABASE_URL": stack.url,
            "MAILSPINE_ENV": "test",
            "MAILSPINE_LOG_LEVEL": "WARNING",
        }
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "checkpoints", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    before = checkpoint_rows(stack)
    assert re.match(
        r"\d+ finished thread\(s\) older than 0s: would delete \d+ checkpoints, ",
        mailspine("prune", "--older-than", "0", "--dry-run"),
    )
    assert "older than 86400s: deleted 0 checkpoints" in mailspine("prune")  # the default: a day
    assert checkpoint_rows(stack) == before
    mailspine("prune", "--older-than", "0")
    stats = mailspine("stats").splitlines()
    finished = next(line for line in stats if line.startswith("finished threads: "))
    assert "1.0 checkpoints each" in finished, stats
    assert any(line.startswith("open threads (queued, processing, review): ") for line in stats), stats


async def _stats(url: str) -> Any:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await checkpoint_stats(session)
    finally:
        await db.dispose()
