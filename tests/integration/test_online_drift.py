"""Rolling means and drift alarms in Postgres: raised below the threshold, cleared above it."""

from __future__ import annotations

import logging
import uuid

import pytest

from app.db import Database
from app.repo import online_eval
from app.settings import Settings
from evals.online import current_alarms, update_drift

pytestmark = pytest.mark.integration


async def _score(db: Database, name: str, run_id: int, value: float | None) -> None:
    async with db.transaction() as session:
        await online_eval.record_score(
            session, trace_id="ab" * 16, email_id=run_id, run_id=run_id, name=name, value=value, details={}
        )


async def test_alarm_is_raised_once_and_cleared(
    db: Database, test_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"test_score_{uuid.uuid4().hex[:8]}"
    online = test_settings.online.model_copy(
        update={"window": 4, "min_scores": 3, "thresholds": {name: 0.75}}
    )
    settings = test_settings.model_copy(update={"online": online})
    run_ids = iter(range(10_000_000 + uuid.uuid4().int % 1_000_000, 20_000_000))

    for value in (1.0, 0.0):  # two scores: below the threshold, but fewer than min_scores
        await _score(db, name, next(run_ids), value)
    assert await update_drift(db, settings, [name]) == []
    await _score(db, name, next(run_ids), None)  # a skipped score does not count
    assert await update_drift(db, settings, [name]) == []

    await _score(db, name, next(run_ids), 0.5)  # mean of 1, 0, 0.5 = 0.5 < 0.75
    with caplog.at_level(logging.WARNING, logger="evals.online"):
        raised = await update_drift(db, settings, [name])
    assert [a.name for a in raised] == [name] and raised[0].window_mean == pytest.approx(0.5)
    assert any(f"drift alarm: rolling mean of {name} is 0.500" in r.getMessage() for r in caplog.records)
    async with db.transaction() as session:
        assert [a.name for a in await current_alarms(session) if a.name == name] == [name]
    await _score(db, name, next(run_ids), 0.0)
    assert await update_drift(db, settings, [name]) == []  # still low: the open alarm stays the only one

    for _ in range(3):  # the window (last 4) becomes 0.0, 1, 1, 1 → 0.75: back at the threshold
        await _score(db, name, next(run_ids), 1.0)
    await update_drift(db, settings, [name])
    async with db.transaction() as session:
        assert not [a for a in await current_alarms(session) if a.name == name]
        history = [a for a in await online_eval.recent_alarms(session, limit=50) if a.name == name]
        mean = await online_eval.window_mean(session, name=name, window=4)
    assert len(history) == 1 and history[0].cleared_at is not None
    assert history[0].cleared_mean == pytest.approx(0.75) and mean.count == 4


async def test_a_score_is_stored_once_per_run_and_name(db: Database) -> None:
    run_id = 30_000_000 + uuid.uuid4().int % 1_000_000
    async with db.transaction() as session:
        first = await online_eval.record_score(
            session, trace_id=None, email_id=1, run_id=run_id, name="judge", value=0.4, details={}
        )
        again = await online_eval.record_score(
            session, trace_id=None, email_id=1, run_id=run_id, name="judge", value=0.9, details={}
        )
        with pytest.raises(ValueError, match="between 0 and 1"):
            await online_eval.record_score(
                session, trace_id=None, email_id=1, run_id=run_id, name="x", value=1.5, details={}
            )
    assert first is not None and again is None
