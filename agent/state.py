"""The graph's typed state."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from agent.inputs import GuardedEmail
from agent.schemas import Extraction
from tools.actions import CrmAddNote, CrmUpsertContact, DraftReply, Plan

Route = Literal["auto", "review", "ignore"]


class RiskAssessment(BaseModel):
    route: Route
    reasons: list[str] = Field(default_factory=list)


class ReviewDecision(BaseModel):
    decision: Literal["approve", "reject"]
    reviewer: str
    reason: str | None = None
    # The plan the reviewer approved (possibly edited). Only this plan is executed.
    approved_plan: Plan | None = None
    approved_hash: str | None = None


class HistoryItem(BaseModel):
    source: str  # where it came from: mailspine.emails, semantic, crm.notes, crm.tickets, crm.deals
    ref: str
    summary: str  # placeholders only (tools/history.py)
    via: str | None = None  # how it was found: thread, sender, company, pgvector, numpy, fulltext


class Usage(BaseModel):
    """What an email's model calls used. Lives in the graph state (a reducer adds each node's
    share), so it survives a crash and a resume does not reset the budgets."""

    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0  # requests sent, including retries and repairs (the step limit counts these)
    cost_micro_usd: int = 0  # from the price table (MAILSPINE_LLM__PRICES); unpriced models cost 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            model_calls=self.model_calls + other.model_calls,
            cost_micro_usd=self.cost_micro_usd + other.cost_micro_usd,
        )


class EffectRecord(BaseModel):
    action: str
    idempotency_key: str
    status: str
    result: dict[str, Any] = Field(default_factory=dict)


class EmailState(TypedDict, total=False):
    email: GuardedEmail
    extraction: Extraction | None
    unsure: list[str]  # typed "unsure" results (invalid model output, ...), each routes to review
    history: list[HistoryItem]
    plan: Plan | None
    risk: RiskAssessment
    decision: ReviewDecision | None
    effects: list[EffectRecord]
    usage: Annotated[Usage, operator.add]
    outcome: str


# Types the checkpoint serializer may revive (strict allowlist instead of "any importable class").
STATE_TYPES: tuple[type[BaseModel], ...] = (
    GuardedEmail,
    Extraction,
    Plan,
    CrmUpsertContact,
    CrmAddNote,
    DraftReply,
    RiskAssessment,
    ReviewDecision,
    HistoryItem,
    Usage,
    EffectRecord,
)
