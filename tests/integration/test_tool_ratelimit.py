"""Shared rate limits hold across processes: two OS processes take tokens of one tool's bucket in
the same database, and the grants (timestamped by the database's clock, which the limiter itself
uses) never exceed ``burst + rate x window`` over any window. Separate buckets per process would
give up to twice that, and fail."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import datetime

import pytest

from app.db import Database
from tools.base import RateLimited
from tools.ratelimit import Rate, RateLimiter

pytestmark = pytest.mark.integration

RATE, BURST, CALLS_EACH = 20.0, 4, 25
WORKER = """
import asyncio, json, sys
from app.db import Database
from tools.ratelimit import Rate, RateLimiter

async def main(url, tool, rate, burst, calls):
    db = Database(url, pool_size=1)
    try:
        limiter = RateLimiter(db)
        print("ready", flush=True)
        sys.stdin.readline()  # both processes start together
        for _ in range(calls):
            at = await limiter.acquire(tool, Rate(per_s=rate, burst=burst), max_wait_s=60)
            print(json.dumps(at.isoformat()), flush=True)
    finally:
        await db.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
"""


def max_over_any_window(grants: list[datetime]) -> float:
    """The largest excess of grants over ``burst + rate x window``, over every window of grants."""
    times = sorted(g.timestamp() for g in grants)
    worst = float("-inf")
    for i in range(len(times)):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - (BURST + RATE * (times[j] - times[i])))
    return worst


def test_two_processes_share_one_rate(database_url: str) -> None:
    tool = f"test-tool-{uuid.uuid4().hex[:8]}"
    args = [database_url, tool, str(RATE), str(BURST), str(CALLS_EACH)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    per_process = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        per_process.append([datetime.fromisoformat(json.loads(line)) for line in out.splitlines() if line])
    assert [len(g) for g in per_process] == [CALLS_EACH, CALLS_EACH]
    grants = [g for process in per_process for g in process]
    # Allowing 1e-3 of a token for float rounding; one bucket per process would exceed it by ~BURST.
    assert max_over_any_window(grants) <= 1e-3
    # Sustained: all grants together, first to last, within the same bound.
    times = sorted(g.timestamp() for g in grants)
    assert len(times) <= BURST + RATE * (times[-1] - times[0]) + 1e-3


def test_the_window_bound_catches_a_per_process_limiter() -> None:
    # What two independent buckets would grant at once: 2 x BURST at the same instant.
    now = datetime.now()
    assert max_over_any_window([now] * (2 * BURST)) >= BURST


async def test_an_empty_bucket_waits_then_raises_rate_limited(database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    tool = f"test-tool-{uuid.uuid4().hex[:8]}"
    try:
        limiter = RateLimiter(db)
        slow = Rate(per_s=0.01, burst=1)  # one token, the next in 100 s
        await limiter.acquire(tool, slow, max_wait_s=0)
        with pytest.raises(RateLimited) as limited:
            await limiter.acquire(tool, slow, max_wait_s=0.5)
        assert 50 < limited.value.retry_after_s <= 100
        fast = Rate(per_s=50, burst=1)  # a token due within the wait: it waits instead of raising
        await limiter.acquire(f"{tool}-fast", fast, max_wait_s=5)
        await asyncio.wait_for(limiter.acquire(f"{tool}-fast", fast, max_wait_s=5), timeout=30)
    finally:
        await db.dispose()
