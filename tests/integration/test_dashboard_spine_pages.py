"""The Evals and Quality-and-cost dashboard pages under AppTest, against a real gateway and Postgres.

Rows are seeded straight into the tables the gateway reads (eval_runs, model_calls, online_scores,
drift_alarms), each with a unique name, so the assertions find them among other tests' rows.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.db import Database
from tests.integration.test_auth_flows import make_key, make_user
from tests.integration.test_dashboard import (  # noqa: F401  (fixtures)
    _db_row,
    _sign_in,
    _sign_in_with_key,
    gateway_url,
)
from tests.integration.test_dashboard_pages import _seed

pytestmark = pytest.mark.integration


def _case(case_id: str, passed: bool, route: str, intent: str) -> dict[str, Any]:
    return {"id": case_id, "passed": passed, "actual": {"route": route, "intent": intent}}


def _eval_run(
    database_url: str,
    *,
    sha: str,
    pass_rate: float,
    cases: list[Any],
    gate: Any,
    prompts: dict[str, str] | None = None,
) -> int:
    metrics = {
        "pass_rate": pass_rate,
        "intent_accuracy": 0.75,
        "cases": len(cases),
        "cost_usd": {"total": 0.0},
    }
    row = _db_row(
        database_url,
        "INSERT INTO eval_runs (started_at, finished_at, dataset_path, dataset_sha256, prompts, provider,"
        " model, metrics, cases, passed_gate, gate_report)"
        " VALUES (now(), now(), 'evals/datasets/golden.jsonl', %s, %s::jsonb,"
        " 'offline', 'offline', %s::jsonb, %s::jsonb, %s, %s::jsonb)"
        " RETURNING id",
        sha,
        json.dumps(prompts or {"plan": "1.1.0"}),
        json.dumps(metrics),
        json.dumps(cases),
        None if gate is None else bool(gate["passed"]),
        None if gate is None else json.dumps(gate),
    )
    return int(row[0])


def _label(at: AppTest, key: str, run_id: int) -> str:
    (label,) = [o for o in at.selectbox(key=key).options if o.startswith(f"#{run_id} ·")]
    return label


async def test_evals_page_lists_runs_shows_the_gate_report_and_diffs_two_runs(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
) -> None:
    sha = secrets.token_hex(32)
    marker = f"rule-{uuid.uuid4().hex[:8]}"
    before = _eval_run(
        database_url,
        sha=sha,
        pass_rate=1.0,
        cases=[_case("c1", True, "auto", "order_status"), _case("c2", True, "review", "refund")],
        gate={"passed": True, "metrics": [], "hard_rules": [marker]},
    )
    after = _eval_run(
        database_url,
        sha=sha,
        pass_rate=0.5,
        cases=[_case("c1", True, "auto", "order_status"), _case("c2", False, "auto", "refund")],
        gate=None,
        prompts={"plan": "1.1.1-draft.1", "extract": "1.1.0"},
    )
    other_dataset = _eval_run(database_url, sha=secrets.token_hex(32), pass_rate=0.0, cases=[], gate=None)

    at = _sign_in(gateway_url, await make_user(db, "auditor"))
    at.switch_page("views/evals.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Evals"
    table = at.dataframe[0].value
    ids = list(table["id"])
    assert {before, after, other_dataset} <= set(ids)
    assert ids == sorted(ids, reverse=True)  # newest first
    rates = dict(zip(table["id"], table["pass_rate"], strict=True))
    assert (rates[before], rates[after]) == (1.0, 0.5)
    gates = dict(zip(table["id"], table["gate"], strict=True))
    assert (gates[before], gates[after]) == ("passed", "not judged")
    assert len(at.get("vega_lite_chart")) == 1  # headline metrics per run

    at.selectbox(key="evals_run").set_value(_label(at, "evals_run", before)).run()
    assert not at.exception
    assert any(marker in c.value for c in at.code)  # the gate report
    at.selectbox(key="evals_run").set_value(_label(at, "evals_run", after)).run()
    assert not any(marker in c.value for c in at.code)
    assert any("No gate has judged this run yet" in t.value for t in at.text)

    at.selectbox(key="evals_diff_a").set_value(_label(at, "evals_diff_a", before))
    at.selectbox(key="evals_diff_b").set_value(_label(at, "evals_diff_b", after)).run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("2 cases in both runs, 1 changed" in t.value for t in at.text)
    assert any("Prompt versions: 2 of 2 differ" in t.value for t in at.text)
    compared = at.dataframe[-2].value
    assert list(compared["prompt"]) == ["extract", "plan"]
    assert list(compared["A"]) == ["-", "1.1.0"] and list(compared["B"]) == ["1.1.0", "1.1.1-draft.1"]
    diff = at.dataframe[-1].value
    assert list(diff["case"]) == ["c2"]
    assert list(diff["changed"]) == ["passed, route"]
    assert list(diff["A (pass / route / intent)"]) == ["pass / review / refund"]
    assert list(diff["B (pass / route / intent)"]) == ["fail / auto / refund"]

    at.selectbox(key="evals_diff_b").set_value(_label(at, "evals_diff_b", other_dataset)).run()
    assert not at.exception
    assert any("different datasets" in i.value for i in at.info)


async def test_quality_page_shows_scores_alarms_spend_and_ops(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    score, model = f"score_{tag}", f"model-{tag}"
    _db_row(
        database_url,
        "INSERT INTO online_scores (trace_id, email_id, run_id, name, value, details)"
        " VALUES (NULL, 1, %s, %s, 0.25, '{}'::jsonb) RETURNING id",
        secrets.randbelow(2**40) + 1,
        score,
    )
    _db_row(
        database_url,
        "INSERT INTO drift_alarms (name, window_mean, window_size, threshold) VALUES (%s, 0.25, 1, 0.8)"
        " RETURNING id",
        score,
    )
    _db_row(
        database_url,
        "INSERT INTO model_calls (thread_id, node, provider, model, status, input_tokens, output_tokens,"
        " cost_micro_usd, latency_ms) VALUES (%s, 'plan', 'openai', %s, 'ok', 1200, 300, 2500000, 10)"
        " RETURNING id",
        f"email-{tag}",
        model,
    )
    await _seed(db, database_url, sender=f"q@{tag}.example", reasons=["legal threat"], hours_old=2)

    at = _sign_in_with_key(gateway_url, await make_key(db, "stats:read"))
    at.switch_page("views/quality.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Quality and cost"
    assert not at.error, [e.value for e in at.error]

    tables = [d.value for d in at.dataframe]
    (alarms,) = [t for t in tables if "raised" in t.columns]
    assert score in list(alarms["score"])
    (current,) = [t for t in tables if "below threshold" in t.columns]
    assert score in list(current["score"])
    (spend,) = [t for t in tables if "cost (USD)" in t.columns]
    mine = spend[spend["model"] == model]
    assert list(mine["input tokens"]) == [1200] and list(mine["cost (USD)"]) == [2.5]
    assert any("drift alarm(s) open" in w.value for w in at.warning)
    assert len(at.get("vega_lite_chart")) >= 2  # online score means and cost per day and model

    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["reviews pending"]) >= 1
    assert metrics["oldest pending review"] != "-"
    assert "spent today" in metrics and "daily budget" in metrics
    assert any("Circuit breakers are kept in each worker" in t.value for t in at.text)


async def test_pages_need_stats_read(
    gateway_url: str,  # noqa: F811
    db: Database,
) -> None:
    at = _sign_in_with_key(gateway_url, await make_key(db, "review:read"))
    for path in ("views/evals.py", "views/quality.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(path)
    at = _sign_in_with_key(gateway_url, await make_key(db, "stats:read"))
    assert at.title[0].value == "Evals"  # the first page a stats:read key may use
