"""Review policy: which plans a person must approve. Pure code, never a model's decision."""

from __future__ import annotations

import re
from decimal import Decimal

from agent.inputs import GuardedEmail
from agent.schemas import Extraction, Intent
from agent.state import RiskAssessment
from tools.actions import DraftReply, Plan

_NO_FOLLOW_UP = {Intent.NEWSLETTER, Intent.SPAM}
# Any amount of money in a reply was taken from the (untrusted) email or made up: a person confirms it.
_MONEY = re.compile(
    r"(?:[$€£]\s?\d|\d[\d.,]*\s?(?:[$€£]|EUR|USD|GBP|CHF)\b|\b(?:EUR|USD|GBP|CHF)\s?\d)", re.IGNORECASE
)


def assess(
    *,
    email: GuardedEmail,
    extraction: Extraction | None,
    plan: Plan | None,
    unsure: list[str],
    refund_threshold: Decimal,
    min_confidence: float,
) -> RiskAssessment:
    reasons: list[str] = [f"unsure: {u}" for u in unsure]
    if email.forwarded:
        reasons.append("forwarded message: its author is not the sender")
    if email.verdict.decision == "flag":
        reasons.append("gateway flagged the email: " + "; ".join(email.verdict.reasons[:3]))
    if extraction is not None:
        if extraction.legal_threat:
            reasons.append("legal threat")
        if extraction.intent == Intent.CANCELLATION:
            reasons.append("cancellation")
        big = [m for m in extraction.amounts if m.value > refund_threshold]
        if extraction.intent in (Intent.REFUND_REQUEST, Intent.COMPLAINT) and big:
            reasons.append(f"refund/credit of {big[0].value} {big[0].currency} is above {refund_threshold}")
        if extraction.confidence < min_confidence:
            reasons.append(f"low confidence {extraction.confidence:.2f} < {min_confidence}")
    for action in plan.actions if plan else []:
        if isinstance(action, DraftReply) and str(action.to).lower() != (email.sender_address or "").lower():
            reasons.append("reply to a recipient other than the sender")
        if isinstance(action, DraftReply) and _MONEY.search(action.body):
            reasons.append("reply states an amount of money")
    if reasons:
        return RiskAssessment(route="review", reasons=reasons)
    if extraction is not None and extraction.intent in _NO_FOLLOW_UP and not (plan and plan.actions):
        return RiskAssessment(route="ignore", reasons=[f"{extraction.intent.value}: no follow-up"])
    return RiskAssessment(route="auto")
