"""Crash points (app/chaos.py): parsed strictly, armed only in dev/test, and they kill like SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app import chaos
from app.settings import REPO_ROOT


def test_parse_probabilities_and_seed() -> None:
    cfg = chaos.parse("ledger.after_call=0.2, checkpoint.put=0.05,seed=123")
    assert cfg.probabilities == {"ledger.after_call": 0.2, "checkpoint.put": 0.05}
    assert cfg.seed == 123


@pytest.mark.parametrize("spec", ["ledger", "ledger=2", "ledger=-0.1", "=0.5", "seed=x", "ledger=often"])
def test_malformed_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        chaos.parse(spec)


def test_a_key_arms_the_points_below_it_and_the_most_specific_wins() -> None:
    cfg = chaos.parse("ledger=0.1,ledger.after_call=0.9,checkpoint.put=0.3")
    assert cfg.probability("ledger.before_call") == 0.1
    assert cfg.probability("ledger.after_call") == 0.9
    assert cfg.probability("checkpoint.put.before") == 0.3
    assert cfg.probability("checkpoint") == 0.0
    assert cfg.probability("ledgers.x") == 0.0  # a prefix of the name, not of a dotted part


def test_same_seed_same_decisions() -> None:
    draws = [[chaos.parse("x=0.5,seed=7").rng.random() for _ in range(5)] for _ in range(2)]
    assert draws[0] == draws[1]


@pytest.mark.parametrize(
    ("env", "spec", "armed"),
    [("test", "x=1", True), ("dev", "x=1", True), ("prod", "x=1", False), ("test", "", False)],
)
def test_armed_only_in_dev_and_test(
    monkeypatch: pytest.MonkeyPatch, env: str, spec: str, armed: bool
) -> None:
    monkeypatch.setenv("MAILSPINE_ENV", env)
    monkeypatch.setenv("MAILSPINE_CHAOS", spec)
    chaos.config.cache_clear()
    try:
        assert (chaos.config() is not None) is armed
        if not armed:
            chaos.crash_point("x.y")  # returns: nothing to do
    finally:
        chaos.config.cache_clear()


def _run(tmp_path: Path, env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    log = tmp_path / "crashes.jsonl"
    code = (
        "from app.chaos import crash_point\n"
        "try:\n    crash_point('x.y', thread_id='t-1')\nfinally:\n    print('finally ran')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={
            "MAILSPINE_ENV": env,
            "MAILSPINE_CHAOS": "x=1",
            "MAILSPINE_CHAOS_LOG": str(log),
            "PATH": "/usr/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, log


def test_a_hit_kills_the_process_like_sigkill_and_logs_the_point(tmp_path: Path) -> None:
    done, log = _run(tmp_path, "test")
    assert done.returncode == chaos.EXIT_CODE == 137
    assert "finally ran" not in done.stdout  # no cleanup runs, as with SIGKILL
    [entry] = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["point"] == "x.y" and entry["thread_id"] == "t-1" and entry["pid"] > 0


def test_prod_ignores_the_variable(tmp_path: Path) -> None:
    done, log = _run(tmp_path, "prod")
    assert done.returncode == 0 and "finally ran" in done.stdout and not log.exists()
