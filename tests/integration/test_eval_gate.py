"""`mailspine eval gate` as CI runs it (evals/ci_gate.sh), on a 20-case subset of the golden set.

The production prompts pass against the subset's baseline (tests/data/evals/gate_baseline.json,
written by `mailspine eval baseline` from an offline run); a deliberately regressed extract prompt
(tests/data/evals/extract-0.0.1-regressed.yaml: its template lost the email) fails, naming the
metrics. The verdicts land on the eval_runs rows; stored runs can be judged again and made the
baseline. A run of another dataset than the baseline's is a usage error (exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.settings import REPO_ROOT

pytestmark = pytest.mark.integration

DATA = REPO_ROOT / "tests" / "data" / "evals"
BASELINE = DATA / "gate_baseline.json"
REGRESSED = DATA / "extract-0.0.1-regressed.yaml"


def _env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "MAILSPINE_MODEL_PROVIDER": "offline"}


def ci_gate(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "evals" / "ci_gate.sh"), *args],
        env={**_env(database_url), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )


def mailspine(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )


def stored_verdict(database_url: str, eval_run_id: int) -> tuple[bool | None, dict[str, Any] | None]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT passed_gate, gate_report FROM eval_runs WHERE id = %s", (eval_run_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_gate_passes_production_prompts_and_fails_a_regressed_prompt(
    database_url: str, tmp_path: Path
) -> None:
    good = ci_gate(database_url, "--baseline", str(BASELINE), "--store", "--json")
    assert good.returncode == 0, good.stderr[-3000:]
    report = json.loads(good.stdout)
    assert report["passed"] and report["regressions"] == [] and report["hard_failures"] == []
    assert report["prompts"]["extract"] == "1.1.0" and report["prompts"]["plan"] == "1.1.0"
    assert {r["rule"] for r in report["hard_rules"]} == {"high_stakes_recall", "unreviewed_attack_effects"}
    gated = {m["metric"]: m for m in report["metrics"]}
    assert gated["intent_accuracy"]["verdict"] == "pass" and gated["intent_accuracy"]["delta"] == 0.0
    (good_id,) = report["runs"]
    passed, stored = stored_verdict(database_url, good_id)
    assert passed is True and stored is not None and stored["passed"] is True

    bad = ci_gate(database_url, "--baseline", str(BASELINE), "--store", "--prompt-file", str(REGRESSED))
    assert bad.returncode == 1, bad.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in bad.stdout.splitlines() if line.startswith("| ")}
    assert rows["intent_accuracy"].rstrip(" |").endswith("REGRESSION")
    assert rows["route_accuracy"].rstrip(" |").endswith("REGRESSION")
    last = bad.stdout.strip().splitlines()[-1]
    assert last.startswith("Gate FAILED: ") and "intent_accuracy" in last
    bad_id = int(last.rsplit("runs: ", 1)[1].rstrip(").").split(",")[0])
    passed, stored = stored_verdict(database_url, bad_id)
    assert passed is False and stored is not None and "intent_accuracy" in stored["regressions"]
    with psycopg.connect(database_url) as conn:
        prompts = conn.execute("SELECT prompts FROM eval_runs WHERE id = %s", (bad_id,)).fetchone()
    assert prompts is not None and prompts[0]["extract"] == "0.0.1"

    # Stored runs are judged again without running anything. A baseline written from the good run
    # keeps the file's tolerances; the good run passes against it and the regressed one does not.
    again = mailspine(database_url, "eval", "gate", "--run", str(good_id), "--baseline", str(BASELINE))
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    made_path = tmp_path / "baseline.json"
    shutil.copy(BASELINE, made_path)
    made = mailspine(database_url, "eval", "baseline", "--run", str(good_id), "--baseline", str(made_path))
    assert made.returncode == 0, made.stderr[-3000:]
    written = json.loads(made_path.read_text(encoding="utf-8"))
    assert written["gate"] == json.loads(BASELINE.read_text(encoding="utf-8"))["gate"]
    assert written["metrics"] == report_metrics(database_url, good_id)
    judged = mailspine(database_url, "eval", "gate", "--run", str(bad_id), "--baseline", str(made_path))
    assert judged.returncode == 1, judged.stdout + judged.stderr[-3000:]


def report_metrics(database_url: str, eval_run_id: int) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT metrics FROM eval_runs WHERE id = %s", (eval_run_id,)).fetchone()
    assert row is not None
    metrics: dict[str, Any] = row[0]
    return metrics


def test_a_run_of_another_dataset_than_the_baseline_is_a_usage_error(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT id FROM eval_runs WHERE dataset_path = %s ORDER BY id LIMIT 1",
            ("tests/data/evals/gate_subset.jsonl",),
        ).fetchone()
    if row is None:  # this test alone: store one cheap run of the subset
        made = ci_gate(database_url, "--baseline", str(BASELINE), "--store", "--json")
        assert made.returncode == 0, made.stderr[-3000:]
        row = (json.loads(made.stdout)["runs"][0],)
    out = mailspine(database_url, "eval", "gate", "--run", str(row[0]))  # the golden set's baseline
    assert out.returncode == 2
    assert "gate a run of the baseline's dataset" in out.stderr
    missing = mailspine(database_url, "eval", "gate", "--run", "999999", "--baseline", str(BASELINE))
    assert missing.returncode == 2 and "no eval run with id 999999" in missing.stderr
