"""Per-tool rate limits shared by every worker: a token bucket per tool, kept in Postgres.

One row per tool (``tool_rate_limits``: tokens, updated_at). Taking a token is one
``UPDATE ... WHERE <a token is available> RETURNING``: it refills the bucket for the time since
``updated_at`` (``rate_per_s`` per second, at most ``burst``) and takes a token, or changes
nothing. The database's clock is the only clock, so workers on several machines share one limit.
The row lock serialises concurrent takers, so the tokens granted over any window of ``w`` seconds
never exceed ``burst + rate_per_s * w``.

When the bucket is empty the caller sleeps (asynchronously) until a token is due and tries again,
for at most the tool's timeout; then ``RateLimited`` (transient: the job is retried).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from app.db import Database
from app.models_tools import ToolRateLimit
from tools.base import RateLimited

_AVAILABLE = (
    "least(CAST(:burst AS double precision), tokens + CAST(:rate AS double precision)"
    " * greatest(0, extract(epoch FROM clock_timestamp() - updated_at)))"
)
# The fast path, one statement: take a token when one is available. An UPDATE locks the row and, in
# READ COMMITTED, re-evaluates its WHERE and SET on the newest version of the row when another
# taker changed it first, so two takers never spend the same token.
_TAKE = text(
    f"UPDATE tool_rate_limits SET tokens = {_AVAILABLE} - 1, updated_at = clock_timestamp() "
    f"WHERE tool = :tool AND {_AVAILABLE} >= 1 RETURNING updated_at"
)
# The slow path (no token, or no bucket yet): how many tokens there are now.
_PEEK = text(f"SELECT {_AVAILABLE}, clock_timestamp() FROM tool_rate_limits WHERE tool = :tool")


@dataclass(frozen=True)
class Rate:
    per_s: float  # tokens added per second
    burst: int  # bucket size: calls that may go at once after a quiet spell

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_s > 0 and burst >= 1, not {self.per_s}/{self.burst}")


class RateLimiter:
    """Takes tokens from the shared buckets in ``db``; one instance per process is enough."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def try_take(self, tool: str, rate: Rate) -> tuple[float, datetime]:
        """Take a token. Returns (0.0, when it was granted by the database's clock) or (seconds
        until the next token is due, when that was computed)."""
        params = {"tool": tool, "rate": rate.per_s, "burst": rate.burst}
        async with self.db.transaction() as session:
            granted = (await session.execute(_TAKE, params)).scalar_one_or_none()
            if granted is not None:
                return 0.0, granted
            peek = (await session.execute(_PEEK, params)).one_or_none()
            if peek is None:  # the first call of this tool anywhere: a full bucket, then take
                await session.execute(
                    insert(ToolRateLimit)
                    .values(tool=tool, tokens=float(rate.burst), updated_at=text("clock_timestamp()"))
                    .on_conflict_do_nothing(index_elements=[ToolRateLimit.tool])
                )
                granted = (await session.execute(_TAKE, params)).scalar_one_or_none()
                if granted is not None:
                    return 0.0, granted
                peek = (await session.execute(_PEEK, params)).one()
        avail, at = float(peek[0]), peek[1]
        return max(0.0, 1 - avail) / rate.per_s or 1e-3, at

    async def acquire(self, tool: str, rate: Rate, *, max_wait_s: float) -> datetime:
        """Take a token, waiting up to ``max_wait_s`` for one; else raise ``RateLimited``. Returns
        the time of the grant by the database's clock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, max_wait_s)
        waited = False
        while True:
            due, at = await self.try_take(tool, rate)
            if due == 0.0:
                if waited:
                    trace.get_current_span().add_event("rate_limit.waited", {"mailspine.tool": tool})
                return at
            if loop.time() + due > deadline:
                raise RateLimited(tool=tool, retry_after_s=due)
            waited = True
            await asyncio.sleep(due)
