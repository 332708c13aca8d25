"""The rule checks of online evaluation and the implicit signals: pure functions, no I/O.

Each returns a ``Score`` with a value in 0..1 (1 = good) or ``None`` when it cannot judge (too
little text, nothing to check); ``details`` says why and never holds personal data: the texts
checked are the agent's own, with placeholders (``gateway/pii.py``), and addresses are counted,
never copied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from agent.inputs import GuardedEmail
from agent.models import offline_lexicon as lex
from agent.models.offline_rules import fold
from agent.policy import assess
from agent.schemas import Extraction
from tools.actions import DraftReply, Plan

_PLACEHOLDER = re.compile(
    r"\[[A-Z]+_\d+(?:_(?:FIRST|LAST))?\]|pii-email-\d+@redacted\.example", re.IGNORECASE
)
_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WORD = re.compile(r"[a-z]+")
MIN_LANGUAGE_EVIDENCE = 3  # stopwords needed before a text's language counts as detected


@dataclass(frozen=True)
class Score:
    name: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)


def skipped(name: str, why: str) -> Score:
    return Score(name=name, value=None, details={"skipped": why})


# --- schema validity ---------------------------------------------------------------------------


def check_schema(extraction: dict[str, Any] | None, plan: dict[str, Any] | None, unsure: list[str]) -> Score:
    """The stored extraction and plan validate against their schemas, and no model answer was
    given up on as schema-invalid (``agent.nodes.unsure_reason``: "<what> invalid: ...")."""
    problems: list[str] = []
    for what, value, schema in (("extraction", extraction, Extraction), ("plan", plan, Plan)):
        if value is None:
            continue
        try:
            schema.model_validate(value)
        except ValidationError as exc:
            problems.append(f"stored {what} does not validate ({exc.error_count()} error(s))")
    problems += [u.split(":", 1)[0] for u in unsure if u.split(":", 1)[0].endswith(" invalid")]
    if extraction is None and plan is None and not problems:
        return skipped("schema_valid", "no extraction or plan stored")
    return Score("schema_valid", 0.0 if problems else 1.0, {"problems": problems})


# --- policy consistency ------------------------------------------------------------------------


def check_policy(
    *,
    email: GuardedEmail,
    extraction: Extraction | None,
    plan: Plan | None,
    unsure: list[str],
    route_taken: str | None,
    refund_threshold: Decimal,
    min_confidence: float,
) -> Score:
    """``agent.policy.assess`` again on the stored state: the route taken must be the one it gives."""
    if route_taken is None:
        return skipped("policy_consistent", "the run recorded no route")
    expected = assess(
        email=email,
        extraction=extraction,
        plan=plan,
        unsure=unsure,
        refund_threshold=refund_threshold,
        min_confidence=min_confidence,
    )
    same = expected.route == route_taken
    return Score(
        "policy_consistent",
        1.0 if same else 0.0,
        {"route_taken": route_taken, "policy_route": expected.route, "reasons": len(expected.reasons)},
    )


# --- another customer's data in a reply --------------------------------------------------------


def replies(plan: Plan | None) -> list[DraftReply]:
    return [a for a in (plan.actions if plan else []) if isinstance(a, DraftReply)]


def check_foreign_data(
    reply_texts: list[str],
    *,
    thread_texts: Iterable[str],
    allowed_addresses: Iterable[str],
    placeholders: Iterable[str],
    order_ids: Iterable[str],
    order_id_pattern: str,
) -> Score:
    """A reply may name only what belongs to this email's sender or thread:

    - placeholders handed out for this email (``placeholders``; numbering restarts per email, so
      any other one stands for someone else's data);
    - e-mail addresses: the sender's, our own, or ones written in the thread (``allowed_addresses``,
      ``thread_texts``);
    - order ids (``order_id_pattern``) that appear in the thread or the extraction (``order_ids``).
    """
    name = "reply_no_foreign_data"
    if not reply_texts:
        return skipped(name, "no reply")
    texts = list(thread_texts)
    known_tokens = {p.lower() for p in placeholders}
    known_addresses = {a.lower() for a in allowed_addresses}
    known_addresses |= {a.lower() for t in texts for a in _ADDRESS.findall(t)}
    pattern = re.compile(order_id_pattern)
    known_orders = {o.upper() for o in order_ids} | {o.upper() for t in texts for o in pattern.findall(t)}
    foreign_tokens: set[str] = set()
    foreign_orders: set[str] = set()
    foreign_addresses = 0
    for reply in reply_texts:
        tokens = {t.lower() for t in _PLACEHOLDER.findall(reply)}
        foreign_tokens |= tokens - known_tokens
        without = _PLACEHOLDER.sub(" ", reply)
        foreign_addresses += len({a.lower() for a in _ADDRESS.findall(without)} - known_addresses)
        foreign_orders |= {o.upper() for o in pattern.findall(without)} - known_orders
    clean = not (foreign_tokens or foreign_orders or foreign_addresses)
    return Score(
        name,
        1.0 if clean else 0.0,
        {
            "foreign_placeholders": sorted(foreign_tokens),
            "foreign_order_ids": sorted(foreign_orders),
            "foreign_addresses": foreign_addresses,  # a count: addresses themselves are personal data
        },
    )


# --- reply language ----------------------------------------------------------------------------


def language_of(text: str) -> tuple[str | None, int]:
    """(language, evidence): the language (en/de/fr/es) whose stopwords occur most, with their count;
    ``None`` when fewer than ``MIN_LANGUAGE_EVIDENCE`` stopwords of any language occur."""
    words = _WORD.findall(fold(_PLACEHOLDER.sub(" ", text)))
    counts = {lang: sum(w in stops for w in words) for lang, stops in lex.STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return (best if counts[best] >= MIN_LANGUAGE_EVIDENCE else None), counts[best]


def check_reply_language(reply_texts: list[str], email_text: str) -> Score:
    """Every reply is written in the email's language (both detected by the same stopword counts)."""
    name = "reply_language"
    if not reply_texts:
        return skipped(name, "no reply")
    email_lang, _ = language_of(email_text)
    if email_lang is None:
        return skipped(name, "the email's language is not detectable")
    langs = [language_of(r)[0] for r in reply_texts]
    if any(lang is None for lang in langs):
        return skipped(name, "a reply's language is not detectable")
    ok = all(lang == email_lang for lang in langs)
    return Score(name, 1.0 if ok else 0.0, {"email": email_lang, "replies": langs})


# --- implicit signals --------------------------------------------------------------------------


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (insert, delete, substitute: 1 each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def edit_similarity(before: str, after: str) -> float:
    """1 - the word-level edit distance divided by the longer text's word count (1: unchanged)."""
    a, b = before.split(), after.split()
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1.0 - edit_distance(a, b) / longest


def _plan_text(plan: dict[str, Any] | None, *, replies_only: bool) -> str:
    actions = (plan or {}).get("actions") or []
    if replies_only:
        return "\n".join(
            f"{a.get('subject', '')}\n{a.get('body', '')}" for a in actions if a.get("kind") == "draft_reply"
        )
    return json.dumps(actions, sort_keys=True, ensure_ascii=False).replace(",", " , ")


def review_signal(status: str, proposed: dict[str, Any] | None, decided: dict[str, Any] | None) -> Score:
    """A reviewer's decision as a score: approved as proposed 1, rejected 0, edited 1 - the
    normalised edit distance between the proposed and the approved reply (the whole action list
    when neither plan has a reply)."""
    if status == "rejected":
        return Score("review", 0.0, {"decision": "rejected"})
    if status != "approved":
        raise ValueError(f"review status {status!r} is not a decision")
    if decided is None or proposed == decided:
        return Score("review", 1.0, {"decision": "approved"})
    has_reply = bool(_plan_text(proposed, replies_only=True) or _plan_text(decided, replies_only=True))
    similarity = edit_similarity(
        _plan_text(proposed, replies_only=has_reply), _plan_text(decided, replies_only=has_reply)
    )
    return Score(
        "review",
        round(similarity, 4),
        {"decision": "edited", "compared": "reply" if has_reply else "actions"},
    )


# The CRM tool raises ``ToolError("CRM rejected ...")`` for a 4xx answer other than 401/403/429
# (tools/crm.py); the ledger keeps that message on the failed row.
CRM_REJECTED_PREFIX = "CRM rejected"


def crm_signal(effects: list[tuple[str, str | None]]) -> Score | None:
    """(status, error) of a run's CRM writes: 0 when the CRM rejected one, 1 when all succeeded,
    ``None`` when there were none or one failed for another reason (unreachable, credential)."""
    if not effects:
        return None
    rejected = sum(
        1 for status, error in effects if status == "failed" and (error or "").startswith(CRM_REJECTED_PREFIX)
    )
    if rejected:
        return Score("crm_write", 0.0, {"rejected": rejected, "writes": len(effects)})
    if all(status == "succeeded" for status, _ in effects):
        return Score("crm_write", 1.0, {"writes": len(effects)})
    return None
