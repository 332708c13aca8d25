"""Request and response bodies of the dashboard API: runs, timelines, traces, evals, prompts,
quality and cost. Routes: ``gateway/routes_runs.py`` and its siblings."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

# A prompt version as the registry writes it: 1.2.0 or 1.2.1-draft.3.
VERSION = r"^\d{1,9}(?:\.\d{1,9}){0,7}(?:-draft\.\d{1,9})?$"
LABEL = Literal["production", "staging", "canary"]
AttrValue = str | int | float | bool | list[str]

# --- runs and timelines ---


class RunRow(BaseModel):
    email_id: int
    sender: str | None = Field(description="The stored sender address, as /v1/emails shows it")
    subject: str | None
    email_status: str
    intent: str | None
    route: str | None
    run_status: str | None = Field(description="None: the email never reached the agent")
    cost_usd: float
    input_tokens: int
    output_tokens: int
    trace_id: str | None
    worker: str | None = Field(
        default=None, description="service.instance.id of the process that last started or finished the run"
    )
    received_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunsPage(BaseModel):
    total: int = Field(description="Rows matching the filters, over all pages")
    limit: int
    offset: int
    items: list[RunRow]


class TimelineEvent(BaseModel):
    at: datetime | None
    kind: Literal["ingested", "scanned", "node", "review_created", "review_decided", "effect", "finished"]
    name: str
    duration_ms: float | None = None
    status: str | None = Field(default=None, description="Verdict, review status, effect or run status")
    actor: str | None = Field(default=None, description="review_decided: the reviewer")
    attempts: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    span_id: str | None = None


class Timeline(BaseModel):
    email_id: int
    status: str
    trace_id: str | None
    route: str | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    events: list[TimelineEvent]


# --- traces ---


class SpanOut(BaseModel):
    span_id: str
    parent_span_id: str | None
    depth: int = Field(description="0 for a root; spans are listed depth first, children by start time")
    name: str
    service: str | None
    start: datetime
    duration_ms: float
    status: str
    attributes: dict[str, AttrValue] = Field(
        description="Selected attributes only (tokens, cost, prompt, guardrail, tool); never free text"
    )


class TraceOut(BaseModel):
    trace_id: str
    spans: list[SpanOut]


# --- evals ---


class EvalRunOut(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime
    dataset_path: str
    dataset_sha256: str
    prompts: dict[str, str]
    provider: str
    model: str
    headline: dict[str, float | None] = Field(description="pass_rate, accuracies, recall, cost ...")
    passed_gate: bool | None = Field(description="None: not judged by a gate yet")


class EvalRunDetail(EvalRunOut):
    metrics: dict[str, Any]
    gate_report: dict[str, Any] | None
    cases: int


class CaseSide(BaseModel):
    passed: bool | None
    route: str | None
    intent: str | None


class CaseChange(BaseModel):
    id: str
    changed: list[Literal["passed", "route", "intent"]]
    a: CaseSide
    b: CaseSide


class EvalDiff(BaseModel):
    a: int
    b: int
    dataset_sha256: str
    compared: int = Field(description="Cases present in both runs")
    changed: list[CaseChange]
    only_in_a: list[str]
    only_in_b: list[str]


# --- prompts ---


class PromptVersionRow(BaseModel):
    version: str
    source: str
    derived_from: str | None
    sha256: str
    created_by: str
    created_at: datetime


class PromptLabelOut(BaseModel):
    label: str
    version: str
    percentage: int | None


class PromptSummary(BaseModel):
    name: str
    versions: list[PromptVersionRow]
    labels: list[PromptLabelOut]


class PromptVersionOut(PromptVersionRow):
    name: str
    labels: list[str]
    content: dict[str, Any]
    yaml: str


class PromptDiff(BaseModel):
    name: str
    v1: str
    v2: str
    diff: str = Field(description="Unified diff of the two versions as YAML; empty when equal")


class DraftIn(BaseModel):
    base_version: str = Field(max_length=64, pattern=VERSION)
    content: dict[str, Any] = Field(description="The prompt's fields (as in its YAML file)")

    @model_validator(mode="after")
    def _storable(self) -> DraftIn:
        dumped = json.dumps(self.content, default=str)
        if len(dumped) > 200_000:
            raise ValueError("the content is too large (over 200,000 characters as JSON)")
        if "\\u0000" in dumped:
            raise ValueError("the content must not contain NUL characters")
        return self


class DraftOut(BaseModel):
    name: str
    version: str
    derived_from: str


class PromoteIn(BaseModel):
    version: str = Field(max_length=64, pattern=VERSION)
    label: LABEL = "production"
    percentage: int | None = Field(default=None, ge=0, le=100, description="Canary only")
    eval_run_id: int = Field(ge=1, le=2**63 - 1, description="An eval run that passed the gate with it")


class RollbackIn(BaseModel):
    label: LABEL = "production"


class LabelMoved(BaseModel):
    name: str
    label: str
    version: str | None = Field(description="Where the label points now; None: removed")
    previous: str | None
    percentage: int | None = None


class PromptEvalJob(BaseModel):
    id: int
    status: str = Field(description="todo, doing or failed (a job that succeeded leaves its eval run)")
    attempts: int
    requested_by: str | None


class PromptEvals(BaseModel):
    name: str
    version: str
    runs: list[EvalRunOut] = Field(description="Eval runs with this version in effect, newest first")
    jobs: list[PromptEvalJob] = Field(description="Requested evals still waiting, running or failed")


class PromptEvalQueued(BaseModel):
    name: str
    version: str
    job_id: int


# --- quality and cost ---


class ScoreBucket(BaseModel):
    name: str
    start: datetime
    mean: float | None
    count: int


class WindowOut(BaseModel):
    name: str
    mean: float | None
    count: int
    threshold: float | None


class AlarmOut(BaseModel):
    id: int
    name: str
    window_mean: float
    window_size: int
    threshold: float
    raised_at: datetime


class FeedbackDay(BaseModel):
    day: datetime
    approved: int
    rejected: int


class OnlineQuality(BaseModel):
    bucket: Literal["hour", "day"]
    window: int = Field(description="Scores per rolling mean (MAILSPINE_ONLINE__WINDOW)")
    buckets: list[ScoreBucket]
    current: list[WindowOut]
    alarms: list[AlarmOut] = Field(description="Open drift alarms, newest first")
    feedback: list[FeedbackDay] = Field(description="Reviewer decisions per UTC day")


class SpendRow(BaseModel):
    day: datetime
    provider: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Budget(BaseModel):
    today_usd: float
    daily_max_usd: float | None = Field(description="MAILSPINE_LLM__DAILY_MAX_COST_USD; None: no cap")
    remaining_usd: float | None
    exceeded: bool


class CostOut(BaseModel):
    days: list[SpendRow]
    budget: Budget


class WorkerOut(BaseModel):
    id: int
    last_heartbeat: datetime
    heartbeat_age_s: float
    running_jobs: int
    stalled: bool = Field(
        description="No heartbeat for longer than stalled_after_s: its jobs will be retried"
    )


class CircuitOut(BaseModel):
    state_known: Literal[False] = False
    note: str
    circuit_open_calls_last_hour: int
    last_circuit_open_at: datetime | None


class OpsOut(BaseModel):
    queue: dict[str, int] = Field(description="Jobs of the processing queue by status")
    maintenance_queue: dict[str, int]
    reviews_pending: int
    oldest_pending_review_at: datetime | None
    oldest_pending_review_age_s: float | None
    workers: list[WorkerOut] | None = Field(description="None: procrastinate keeps no worker table")
    stalled_after_s: float
    circuit_breakers: CircuitOut
