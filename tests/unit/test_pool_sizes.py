"""A worker's connection pools: sized for its concurrency, or capped by MAILSPINE_WORKER_DB_CONNECTIONS."""

from __future__ import annotations

import pytest

from app.services import PoolSizes, pool_sizes
from app.settings import Settings


def _settings(**values: int) -> Settings:
    return Settings(env="test", _env_file=None, **values)  # type: ignore[arg-type]


def test_by_default_one_connection_per_slot_in_each_pool_and_overflow() -> None:
    assert pool_sizes(_settings(worker_concurrency=4)) == PoolSizes(db_pool=6, db_overflow=10, checkpoints=5)
    assert pool_sizes(_settings(worker_concurrency=64)) == PoolSizes(
        db_pool=66, db_overflow=10, checkpoints=65
    )


@pytest.mark.parametrize(
    ("budget", "expected"), [(4, (2, 0, 2)), (9, (4, 0, 5)), (40, (20, 0, 20)), (1, (2, 0, 2))]
)
def test_a_budget_caps_both_pools_together_without_overflow(
    budget: int, expected: tuple[int, int, int]
) -> None:
    sizes = pool_sizes(_settings(worker_concurrency=64, worker_db_connections=budget))
    assert (sizes.db_pool, sizes.db_overflow, sizes.checkpoints) == expected
    assert sizes.db_pool + sizes.checkpoints <= max(budget, 4)
