"""The eval report: per-case rows for the JSON, a markdown summary, and ``evals/baseline.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.settings import Settings
from evals.metrics import (
    case_fields,
    case_passed,
    case_violations,
    expected_trajectory,
    intent_ok,
    trajectory_match,
)
from evals.observed import Pair

BASELINE = Path(__file__).resolve().parent / "baseline.json"
_MAX_FAILURES_SHOWN = 40


def model_label(settings: Settings) -> str:
    fast, strong = settings.model_fast or "", settings.model_strong or ""
    return fast if fast == strong else f"{fast} / {strong}"


def case_row(pair: Pair) -> dict[str, Any]:
    """One case of the JSON report: expected against actual, what differs, pass or fail."""
    labels, got = pair.case.labels, pair.got
    expected_nodes = expected_trajectory(labels.route)
    return {
        "id": pair.case.id,
        "tags": pair.case.tags,
        "passed": case_passed(pair),
        "expected": {
            "intent": labels.intent.value,
            "route": labels.route,
            "high_stakes": labels.high_stakes,
            "actions": sorted(labels.expected_actions),
            "forbidden": labels.forbidden_actions,
        },
        "actual": {
            "intent": got.intent,
            "intent_ok": intent_ok(pair),
            "route": got.route,
            "status": got.status,
            "actions": sorted(got.action_kinds),
            "effects": got.effects,
            "unreviewed_effects": got.unreviewed_effects,
        },
        "field_diffs": case_fields(pair),
        "forbidden_violations": case_violations(pair),
        "trajectory": {
            "expected": expected_nodes,
            "actual": got.trajectory,
            **trajectory_match(expected_nodes, got.trajectory),
        },
        "cost_usd": got.cost_usd,
        "latency_ms": round(got.latency_ms, 1),
        "email_id": got.email_id,
        "detail": (got.detail or "")[:300] or None,
    }


def baseline_of(report: dict[str, Any]) -> dict[str, Any]:
    """What ``--write-baseline`` keeps of a report: which run it was, and its metrics."""
    keys = ("provider", "model", "prompts", "metrics")
    dataset = {k: report["dataset"][k] for k in ("path", "sha256", "cases")}
    return {"dataset": dataset, **{k: report[k] for k in keys}}


def write_baseline(report: dict[str, Any], path: Path = BASELINE) -> None:
    path.write_text(json.dumps(baseline_of(report), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_baseline(path: Path = BASELINE) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _get(metrics: dict[str, Any], path: str) -> Any:
    value: Any = metrics
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


_HEADLINE: tuple[tuple[str, str, int], ...] = (
    ("passed cases", "pass_rate", 3),
    ("intent accuracy", "intent_accuracy", 3),
    ("route accuracy (quarantine included)", "route_accuracy", 3),
    ("high-stakes recall (must be 1.000)", "high_stakes_recall", 3),
    ("attack cases with unreviewed side effects (must be 0)", "unreviewed_attack_effects", 0),
    ("expected actions: exact match", "actions.match_rate", 3),
    ("expected actions: F1", "actions.f1", 3),
    ("cases with a forbidden action", "forbidden.cases", 0),
    ("trajectory: exact node sequence", "trajectory.exact", 3),
    ("trajectory: no unexpected node (subset)", "trajectory.subset", 3),
    ("trajectory: every expected node (superset)", "trajectory.superset", 3),
    ("cost per email, USD: p50", "cost_usd.p50", 6),
    ("cost per email, USD: p95", "cost_usd.p95", 6),
    ("latency per email, ms: p50", "latency_ms.p50", 1),
    ("latency per email, ms: p95", "latency_ms.p95", 1),
)


def _headline(metrics: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    lines = ["| metric | this run | baseline |", "|---|---|---|"]
    for label, path, digits in _HEADLINE:
        value, before = _get(metrics, path), _get(base, path) if base else None
        lines.append(f"| {label} | {_num(value, digits)} | {_num(before, digits) if base else '–'} |")
    return lines


def _failures(cases: list[dict[str, Any]]) -> list[str]:
    failed = [c for c in cases if not c["passed"]]
    if not failed:
        return ["Every case passed."]
    lines = [
        "| case | route (expected → actual) | intent | actions (expected → actual) | also |",
        "|---|---|---|---|---|",
    ]
    for c in failed[:_MAX_FAILURES_SHOWN]:
        e, a = c["expected"], c["actual"]
        intent = e["intent"] if a["intent_ok"] else f"{e['intent']} → {a['intent']}"
        actions = (
            "="
            if e["actions"] == a["actions"]
            else f"{','.join(e['actions']) or '–'} → {','.join(a['actions']) or '–'}"
        )
        also = [*(f"forbidden: {v}" for v in c["forbidden_violations"]), *(f"≠{k}" for k in c["field_diffs"])]
        lines.append(
            f"| {c['id']} | {e['route']} → {a['route']} | {intent} | {actions} | {'; '.join(also)} |"
        )
    if len(failed) > _MAX_FAILURES_SHOWN:
        lines.append(f"\n… and {len(failed) - _MAX_FAILURES_SHOWN} more (`--json` has every case).")
    return lines


def render_markdown(report: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """The readable summary; the baseline column is filled when it is of the same dataset."""
    m, ds = report["metrics"], report["dataset"]
    same = baseline is not None and baseline["dataset"]["sha256"] == ds["sha256"]
    base = baseline["metrics"] if same and baseline and baseline["dataset"]["cases"] == ds["cases"] else None
    prompts = ", ".join(f"{k}@{v}" for k, v in report["prompts"].items())
    run = f"eval run {report['eval_run_id']}" if report["eval_run_id"] else "eval run (not stored)"
    out = [
        f"# {run}: {ds['path']}",
        "",
        f"{m['cases']} cases ({m['errors']} errors), model {report['model']} ({report['provider']}), "
        f"prompts {prompts}; {report['seconds']} s. Dataset sha256 {ds['sha256'][:12]}.",
        "",
        *_headline(m, base),
        "",
        f"{m['high_stakes_cases']} high-stakes and {m['attack_cases']} attack cases. Forbidden phrases "
        f"checked: {m['forbidden']['checked']}, violated: {m['forbidden']['violations']}"
        + "".join(f"; {phrase} ×{n}" for phrase, n in m["forbidden"]["by_phrase"].items())
        + ".",
        "",
        "## Extracted fields (micro-averaged; cases the agent is meant to see)",
        "",
        "| field | precision | recall | F1 | tp / fp / fn |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {_num(s['precision'])} | {_num(s['recall'])} | {_num(s['f1'])} | "
            f"{s['tp']} / {s['fp']} / {s['fn']} |"
            for name, s in m["fields"].items()
        ),
        "",
        "## Routes (rows: expected, columns: actual)",
        "",
        *_confusion(m["route_confusion"]),
        "",
        "## Cases that did not pass",
        "",
        *_failures(report["cases"]),
    ]
    if report.get("database"):
        out += ["", f"The eval database was kept: {report['database']}"]
    return "\n".join(out) + "\n"


def _confusion(table: dict[str, dict[str, int]]) -> list[str]:
    actual = sorted({route for row in table.values() for route in row})
    lines = ["| expected | " + " | ".join(actual) + " |", "|---|" + "---|" * len(actual)]
    lines += [
        f"| {route} | " + " | ".join(str(row.get(a, 0)) for a in actual) + " |"
        for route, row in table.items()
    ]
    return lines
