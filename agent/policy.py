"""Review policy: which plans a person must approve. Pure code, never a model's decision."""

from __future__ import annotations

import re
from decimal import Decimal

from agent.inputs import GuardedEmail
from agent.schemas import Extraction, Intent
from agent.state import RiskAssessment
from gateway.guards.patterns import load_patterns
from tools.actions import CrmAddNote, DraftReply, Plan

_NO_FOLLOW_UP = {Intent.NEWSLETTER, Intent.SPAM}
# Any amount of money in a reply was taken from the (untrusted) email or made up: a person confirms it.
_MONEY = re.compile(
    r"(?:[$€£]\s?\d|\d[\d.,]*\s?(?:[$€£]|EUR|USD|GBP|CHF)\b|\b(?:EUR|USD|GBP|CHF)\s?\d)", re.IGNORECASE
)

# A link in an automatic reply is how a reply phishes or leaks (a URL with data in its query);
# mailspine's own replies have no reason to carry one, so a person checks any that does.
_LINK = re.compile(r"(?:\bhttps?://|\bwww\.|\]\(|\bdata:)", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PATTERNS = load_patterns()

# A request to disclose another person's data ("tell me the address you have for him", "what else
# she ordered"): a reply must never disclose it, so a person reads the request first. Heuristic,
# en/de/fr/es; it looks only at the sender's new text, where such a request is made.
_ASK = r"\b(?:tell|send|give|share|forward|confirm|provide|look up|let me know|check)\b"
_DATA = r"(?:address|phone(?: number)?|orders?|order history|purchases?|account|details)"
_THEIR = (
    r"(?:\b(?:his|her|their)\b|\b(?:neighbou?r|friend|colleague|wife|husband|partner|son|daughter|brother|"
    r"sister|mother|father|mum|mom|dad|boss|another customer|other customers?)(?:'s|s'|’s)?)"
)
_THIRD_PARTY_DATA = re.compile(
    rf"{_ASK}[^.!?]{{0,80}}?\b{_DATA}\b[^.!?]{{0,30}}?\b(?:for|of)\s+(?:him|her|them|my\s+\w+)\b"
    rf"|{_ASK}[^.!?]{{0,60}}?{_THEIR}\s+(?:[\w-]+\s+)?{_DATA}\b"
    r"|\bwhat else (?:he|she|they) (?:has |have )?(?:ordered|bought|purchased)\b"
    r"|\b(?:seine|ihre)[nm]?\s+(?:Liefer|Post|Wohn)?adresse\b|\bwas (?:er|sie) (?:sonst )?bestellt\b"
    r"|\b(?:son|sa|leur)\s+adresse(?: de livraison)?\b|\bce qu'(?:il|elle) a (?:aussi )?command[ée]\b"
    r"|\bqu[ée] m[áa]s (?:ha|han) (?:pedido|comprado)\b",
    re.IGNORECASE,
)


def _request_reasons(email: GuardedEmail, plan: Plan | None) -> list[str]:
    """What the sender's own request asks for that a person must decide on."""
    if not (plan and plan.actions):
        return []
    reasons: list[str] = []
    new_text = f"{email.subject}\n{email.text}"
    own = {(email.sender_address or "").lower(), *(a.lower() for a in email.to)}
    # The sender asks for replies to go elsewhere, or names someone to involve: the reply goes to
    # the sender only, and a person decides about the other address (a Reply-To redirect's text).
    if any(isinstance(a, DraftReply) for a in plan.actions) and (
        {a.lower() for a in _ADDRESS.findall(new_text)} - own
    ):
        reasons.append("the email names an e-mail address other than the sender's")
    if _THIRD_PARTY_DATA.search(new_text):
        reasons.append("the email asks for another person's data")
    return reasons


def _free_text_reasons(action: CrmAddNote | DraftReply, sender: str) -> list[str]:
    """Model-written text that will leave the agent: what in it needs a person."""
    what = "reply" if isinstance(action, DraftReply) else "CRM note"
    reasons: list[str] = []
    if isinstance(action, DraftReply) and _MONEY.search(action.body):
        reasons.append("reply states an amount of money")
    if isinstance(action, DraftReply) and _LINK.search(action.body):
        reasons.append("reply contains a link")
    others = {a.lower() for a in _ADDRESS.findall(action.body)} - {sender}
    if others:
        reasons.append(f"{what} mentions an e-mail address other than the sender's")
    # A note is read back into later prompts (sender history): instructions stored there would
    # reach the model again, looking like our own data.
    if hits := _PATTERNS.matches(action.body):
        reasons.append(f"{what} contains instruction-like text ({hits})")
    return reasons


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
    sender = (email.sender_address or "").lower()
    if email.sender_problem and plan and plan.actions:
        reasons.append(f"the sender's address cannot receive mail ({email.sender_problem})")
    reasons += _request_reasons(email, plan)
    for action in plan.actions if plan else []:
        if isinstance(action, DraftReply) and str(action.to).lower() != sender:
            reasons.append("reply to a recipient other than the sender")
        if isinstance(action, (CrmAddNote, DraftReply)):
            reasons += [r for r in _free_text_reasons(action, sender) if r not in reasons]
    if reasons:
        return RiskAssessment(route="review", reasons=reasons)
    if extraction is not None and extraction.intent in _NO_FOLLOW_UP and not (plan and plan.actions):
        return RiskAssessment(route="ignore", reasons=[f"{extraction.intent.value}: no follow-up"])
    return RiskAssessment(route="auto")
