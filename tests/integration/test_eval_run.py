"""`mailspine eval run` as a user runs it: ten golden cases through the real graph, offline model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app.settings import REPO_ROOT
from evals.golden import GOLDEN

pytestmark = pytest.mark.integration

# Ten cases that cover every route, high-stakes mail and attacks: the first of each kind in the file.
QUOTA = {"auto": 4, "review": 3, "ignore": 1, "quarantine": 2}


def subset(path: Path) -> list[dict[str, object]]:
    left, picked = dict(QUOTA), []
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        route = case["labels"]["route"]
        if left.get(route, 0) > 0 and (route != "review" or case["labels"]["high_stakes"]):
            left[route] -= 1
            picked.append(case)
    path.write_text("".join(json.dumps(c) + "\n" for c in picked), encoding="utf-8")
    return picked


def eval_databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'mailspine_eval_%'")
        return {r[0] for r in rows}


def test_eval_run_scores_a_small_dataset_and_records_the_run(database_url: str, tmp_path: Path) -> None:
    dataset = tmp_path / "subset.jsonl"
    cases = subset(dataset)
    assert len(cases) == 10
    before = eval_databases(database_url)
    argv = ["eval", "run", "--dataset", str(dataset), "--json", "--prompt", "extract@1.0.0"]
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", *argv, "--model", "offline-eval"],
        env={**os.environ, "DATABASE_URL": database_url, "MAILSPINE_MODEL_PROVIDER": "offline"},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)

    assert report["dataset"]["cases"] == 10 and len(report["dataset"]["sha256"]) == 64
    assert report["prompts"]["extract"] == "1.0.0" and "plan" in report["prompts"]
    assert report["provider"] == "offline" and report["model"] == "offline-eval"
    metrics = report["metrics"]
    assert metrics["cases"] == 10 and metrics["errors"] == 0
    assert isinstance(metrics["route_accuracy"], float) and 0.0 <= metrics["route_accuracy"] <= 1.0
    assert metrics["high_stakes_cases"] >= 5  # three review, two quarantine (attacks)
    assert isinstance(metrics["high_stakes_recall"], float)
    assert metrics["route_confusion"]["quarantine"].get("quarantine", 0) >= 1
    assert set(metrics["fields"]) == {
        *("order_ids", "amounts", "sender", "company", "language", "urgency", "legal_threat")
    }
    assert metrics["fields"]["sender"]["f1"] == 1.0  # taken from the headers, never from the text
    assert metrics["latency_ms"]["p50"] > 0 and metrics["cost_usd"]["total"] == 0.0
    assert metrics["unreviewed_attack_effects"] == 0

    rows = {row["id"]: row for row in report["cases"]}
    assert list(rows) == [c["id"] for c in cases]
    for row in rows.values():
        assert {"expected", "actual", "field_diffs", "forbidden_violations", "trajectory", "passed"} <= set(
            row
        )
        if row["actual"]["route"] == "quarantine":
            assert row["trajectory"]["actual"] == []  # the gateway stopped it: no node ran
        elif row["actual"]["route"] in ("auto", "review"):
            assert row["trajectory"]["actual"][:4] == ["extract", "history", "plan", "risk"]
    assert any(r["actual"]["route"] == "auto" and r["actual"]["effects"] > 0 for r in rows.values())

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT dataset_sha256, prompts, model, metrics, jsonb_array_length(cases), passed_gate "
            "FROM eval_runs WHERE id = %s",
            (report["eval_run_id"],),
        ).fetchone()
    assert stored is not None
    sha, prompts, model, stored_metrics, n_cases, gate = stored
    assert sha == report["dataset"]["sha256"] and prompts["extract"] == "1.0.0" and model == "offline-eval"
    assert stored_metrics["route_accuracy"] == metrics["route_accuracy"] and n_cases == 10 and gate is None
    assert eval_databases(database_url) == before  # the eval's own database is gone
