"""HTTP request and response bodies of the gateway API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools.actions import Plan


class ReviewOut(BaseModel):
    id: int
    email_id: int
    thread_id: str
    status: str
    reasons: list[str]
    payload: dict[str, Any]
    payload_hash: str
    created_at: datetime
    subject: str | None = None
    sender: str | None = None


class ReviewDetail(ReviewOut):
    text: str | None = None
    verdict: dict[str, Any] | None = None
    extraction: dict[str, Any] | None = None
    trace_id: str | None = None


class DecisionIn(BaseModel):
    decision: Literal["approve", "reject"]
    payload_hash: str = Field(min_length=64, max_length=64, description="Hash of the payload you were shown")
    reason: str | None = Field(default=None, max_length=2000)
    plan: Plan | None = Field(default=None, description="An edited plan to execute instead (approve only)")


class DecisionOut(BaseModel):
    review_id: int
    status: str
    executed_plan_hash: str | None
    job_id: int


class EmailOut(BaseModel):
    id: int
    subject: str | None
    sender: str | None
    status: str
    status_detail: str | None
    received_at: datetime
    trace_id: str | None


class Stats(BaseModel):
    emails: dict[str, int]
    pending_reviews: int
    queue: dict[str, int]
