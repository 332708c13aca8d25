"""Offline eval runs (``eval_runs``): list, one run's metrics and gate report, and a per-case
diff of two runs of the same dataset (scope ``stats:read``)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.models_eval import EvalRun
from app.repo import dashboard_queries as q
from app.repo import eval_runs
from gateway.auth import StatsReader
from gateway.routes_deps import AUTH_ERRORS, RowId, Session, errors
from gateway.schemas_dashboard import CaseChange, CaseSide, EvalDiff, EvalRunDetail, EvalRunOut

TAGS: list[str | Enum] = ["evals"]
HEADLINE = (
    "pass_rate",
    "intent_accuracy",
    "route_accuracy",
    "high_stakes_recall",
    "unreviewed_attack_effects",
    "cases",
    "errors",
    "cost_usd.total",
    "latency_ms.p95",
)
RunIdQuery = Annotated[int, Query(ge=1, le=2**63 - 1)]


def _metric(metrics: dict[str, Any], path: str) -> float | None:
    value: Any = metrics
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_out(run: EvalRun) -> dict[str, Any]:
    """A run's row as the list shows it (``EvalRunOut``); the prompt console uses it too."""
    return {
        "id": run.id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "dataset_path": run.dataset_path,
        "dataset_sha256": run.dataset_sha256,
        "prompts": {str(k): str(v) for k, v in (run.prompts or {}).items()},
        "provider": run.provider,
        "model": run.model,
        "headline": {m: _metric(run.metrics or {}, m) for m in HEADLINE},
        "passed_gate": run.passed_gate,
    }


def _side(case: dict[str, Any] | None) -> CaseSide:
    actual = (case or {}).get("actual") or {}
    passed = (case or {}).get("passed")
    return CaseSide(
        passed=passed if isinstance(passed, bool) else None,
        route=actual.get("route") if isinstance(actual.get("route"), str) else None,
        intent=actual.get("intent") if isinstance(actual.get("intent"), str) else None,
    )


def case_diff(a: EvalRun, b: EvalRun) -> EvalDiff:
    """Cases (by id) whose pass, route or intent differ between the two runs."""
    cases_a = {str(c["id"]): c for c in a.cases or [] if isinstance(c, dict) and "id" in c}
    cases_b = {str(c["id"]): c for c in b.cases or [] if isinstance(c, dict) and "id" in c}
    both = [i for i in cases_a if i in cases_b]
    changed = []
    for case_id in both:
        side_a, side_b = _side(cases_a[case_id]), _side(cases_b[case_id])
        fields = [f for f in ("passed", "route", "intent") if getattr(side_a, f) != getattr(side_b, f)]
        if fields:
            changed.append(CaseChange(id=case_id, changed=fields, a=side_a, b=side_b))
    return EvalDiff(
        a=a.id,
        b=b.id,
        dataset_sha256=a.dataset_sha256,
        compared=len(both),
        changed=changed,
        only_in_a=[i for i in cases_a if i not in cases_b],
        only_in_b=[i for i in cases_b if i not in cases_a],
    )


async def _run(session: AsyncSession, eval_run_id: int) -> EvalRun:
    run = await eval_runs.get_eval_run(session, eval_run_id=eval_run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"eval run {eval_run_id} not found")
    return run


def register(app: FastAPI) -> None:
    @app.get("/v1/evals/runs", tags=TAGS, response_model=list[EvalRunOut], responses=AUTH_ERRORS)
    async def list_eval_runs(
        _: StatsReader,
        session: Session,
        dataset_sha256: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[EvalRunOut]:
        """Eval runs, newest first, with headline metrics and the gate's verdict."""
        runs = await q.list_eval_runs(session, dataset_sha256=dataset_sha256, limit=limit, offset=offset)
        return [EvalRunOut(**run_out(r)) for r in runs]

    @app.get(
        "/v1/evals/runs/{eval_run_id}",
        tags=TAGS,
        response_model=EvalRunDetail,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def get_eval_run(eval_run_id: RowId, _: StatsReader, session: Session) -> EvalRunDetail:
        """One run: every metric and the gate report (None until a gate judged it)."""
        run = await _run(session, eval_run_id)
        return EvalRunDetail(
            **run_out(run), metrics=run.metrics or {}, gate_report=run.gate_report, cases=len(run.cases or [])
        )

    @app.get(
        "/v1/evals/diff",
        tags=TAGS,
        response_model=EvalDiff,
        responses={**AUTH_ERRORS, **errors(400, 404)},
    )
    async def diff_eval_runs(a: RunIdQuery, b: RunIdQuery, _: StatsReader, session: Session) -> EvalDiff:
        """Per case: what changed from run ``a`` to run ``b`` (runs of the same dataset only)."""
        run_a, run_b = await _run(session, a), await _run(session, b)
        if run_a.dataset_sha256 != run_b.dataset_sha256:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"eval runs {a} and {b} ran different datasets "
                f"({run_a.dataset_sha256[:12]} and {run_b.dataset_sha256[:12]}); compare runs of one dataset",
            )
        return case_diff(run_a, run_b)
