"""Checkpoint retention wiring (no database: the pruning itself is tested in integration)."""

from __future__ import annotations

import pytest

from agent.retention import PruneReport, prune_checkpoints
from app.queue import MAINTENANCE_QUEUE
from app.settings import Settings


def test_every_worker_prunes_hourly_on_the_maintenance_queue() -> None:
    from app.tasks import queue_app

    [periodic] = [
        p
        for (name, _), p in queue_app.periodic_registry.periodic_tasks.items()
        if name == "prune_checkpoints"
    ]
    assert periodic.cron.split()[1:] == ["*", "*", "*", "*"]  # one minute of every hour
    assert periodic.task.queue == MAINTENANCE_QUEUE and periodic.task.queueing_lock == "prune_checkpoints"


def test_retention_defaults_to_a_day_and_refuses_a_negative_age() -> None:
    assert Settings(_env_file=None).checkpoint_retention_s == 86400
    with pytest.raises(ValueError):
        Settings(checkpoint_retention_s=-1, _env_file=None)


async def test_prune_checks_its_arguments_before_connecting() -> None:
    with pytest.raises(ValueError, match="older_than_s"):
        await prune_checkpoints("postgresql://nowhere.invalid/x", older_than_s=-1)
    with pytest.raises(ValueError, match="batch"):
        await prune_checkpoints("postgresql://nowhere.invalid/x", older_than_s=0, batch=0)


def test_reports_add_up_and_keep_the_dry_run_flag() -> None:
    a = PruneReport(threads=2, checkpoints_deleted=10, bytes_before=100, bytes_after=40, dry_run=True)
    b = PruneReport(threads=1, writes_deleted=3, blobs_deleted=2, bytes_before=50, bytes_after=20, skipped=1)
    assert a + b == PruneReport(
        threads=3,
        checkpoints_deleted=10,
        writes_deleted=3,
        blobs_deleted=2,
        bytes_before=150,
        bytes_after=60,
        skipped=1,
        dry_run=True,
    )
