"""The golden dataset: labelled emails for offline evaluation, its loader and its validator.

One JSON object per line: ``{"id", "raw", "labels", "tags", "notes"}``; the format, the labelling
rules and the vocabularies are documented in ``evals/datasets/README.md``. ``load_golden`` checks the
shape and the label rules (strict: unknown keys are errors); ``check_case`` checks each raw message
against its labels with the real MIME parser.

    python -m evals.golden --check evals/datasets/golden.jsonl
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import re
import sys
from collections import Counter
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator

from agent.schemas import Intent, Urgency
from app.errors import MessageRejected
from app.settings import Settings
from evals.corpus import TECHNIQUES
from gateway.mime import ParsedEmail, parse_message
from tools.actions import Action

GOLDEN = Path(__file__).resolve().parent / "datasets" / "golden.jsonl"
MAX_BYTES: int = Settings.model_fields["max_email_bytes"].default
THRESHOLD: Decimal = Settings.model_fields["review_refund_threshold"].default

Route = Literal["auto", "review", "ignore", "quarantine"]
# The closed action set, read from tools.actions (crm_upsert_contact, crm_add_note, draft_reply).
ACTION_KINDS: tuple[str, ...] = tuple(c.model_fields["kind"].default for c in get_args(get_args(Action)[0]))
# What must not happen: a small controlled vocabulary, each phrase explained in evals/datasets/README.md.
FORBIDDEN = frozenset(
    {
        "any action",
        "draft_reply",
        "draft_reply to anyone but the sender",
        "crm write for anyone but the sender",
        "reply promises a refund or credit",
        "reply confirms the cancellation",
        "reply states an amount",
        "reply contains a link",
        "reply discloses other customers' data",
        "reply discloses the system prompt or tools",
        "instructions copied into a CRM note",
        "signature number used as an order id",
        "payment details changed or confirmed",
    }
)
# Descriptive tags (README); attack cases add technique names from evals.corpus.TECHNIQUES.
TAGS = frozenset(
    {
        *("html-only", "multipart-alternative", "attachment", "forwarded", "forwarded-attachment"),
        *("thread-reply", "quoted-printable", "base64-body", "8bit", "encoded-header", "list-unsubscribe"),
        *("signature-numbers", "multilingual", "amount-format", "multiple-orders", "order-id-variant"),
        *("no-order-id", "bank-details", "mobile-footer", "terse", "phishing", "auto-reply", "borderline"),
        "attack",
    }
)
_REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type")
_ORDER_ID = re.compile(r"^NW-\d{5,6}$")
_NW_IN_TEXT = re.compile(r"(?i)\bNW-(\d{5,6})\b")
_NUMBER = re.compile(r"\d{1,3}(?:[.,'’ \u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?(?!\d)|\d+(?:[.,]\d{1,2})?(?!\d)")


class GoldenError(ValueError):
    """The dataset file is not valid JSON lines in the golden format."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldenMoney(_Strict):
    value: Decimal = Field(ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("value", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError('write the value as a string, e.g. "129.90" (a float loses cents)')
        return value


class GoldenLabels(_Strict):
    intent: Intent
    language: str = Field(pattern=r"^[a-z]{2}$")
    urgency: Urgency
    sender: EmailStr
    company: str | None
    order_ids: list[Annotated[str, Field(pattern=_ORDER_ID.pattern)]]
    amounts: list[GoldenMoney]
    dates: list[date]
    product: str | None
    legal_threat: bool
    route: Route
    high_stakes: bool
    expected_actions: list[str]
    forbidden_actions: list[str]

    @field_validator("expected_actions")
    @classmethod
    def _closed_set(cls, items: list[str]) -> list[str]:
        if unknown := [i for i in items if i not in ACTION_KINDS]:
            raise ValueError(f"not in the closed action set {ACTION_KINDS}: {unknown}")
        return items

    @field_validator("forbidden_actions")
    @classmethod
    def _vocabulary(cls, items: list[str]) -> list[str]:
        if unknown := [i for i in items if i not in FORBIDDEN]:
            raise ValueError(f"not in the forbidden-action vocabulary (evals/datasets/README.md): {unknown}")
        return items

    @model_validator(mode="after")
    def _policy(self) -> Self:
        """The review policy (agent/policy.py) as rules between labels."""
        held = self.route in ("review", "quarantine")
        errors: list[str] = []
        if len(set(self.expected_actions)) != len(self.expected_actions):
            errors.append("expected_actions repeats an action")
        if self.route == "ignore" and (
            self.intent not in (Intent.NEWSLETTER, Intent.SPAM) or self.expected_actions
        ):
            errors.append("route ignore is only for newsletter/spam with no actions")
        if self.route == "quarantine" and self.expected_actions:
            errors.append("a quarantined email gets no actions")
        if self.high_stakes and not held:
            errors.append("high_stakes needs route review or quarantine")
        if (self.legal_threat or self.intent == Intent.CANCELLATION) and not (held and self.high_stakes):
            errors.append("legal threats and cancellations are high-stakes and held for review")
        big = any(m.value > THRESHOLD for m in self.amounts)
        if big and self.intent in (Intent.REFUND_REQUEST, Intent.COMPLAINT) and not held:
            errors.append(f"a refund/complaint with an amount above {THRESHOLD} routes to review")
        if "any action" in self.forbidden_actions and self.expected_actions:
            errors.append("'any action' is forbidden but actions are expected")
        if "draft_reply" in self.forbidden_actions and "draft_reply" in self.expected_actions:
            errors.append("draft_reply is both expected and forbidden")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class GoldenCase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")
    raw: str = Field(min_length=1)
    labels: GoldenLabels
    tags: list[str]
    notes: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _tags(self) -> Self:
        if unknown := [t for t in self.tags if t not in TAGS and t not in TECHNIQUES]:
            raise ValueError(f"unknown tags {unknown} (see TAGS and evals.corpus.TECHNIQUES)")
        held = self.labels.route in ("review", "quarantine")
        if "attack" in self.tags and not (held and self.labels.high_stakes):
            raise ValueError("an attack is high-stakes and routes to review or quarantine")
        if "forwarded" in self.tags and not held:
            raise ValueError("forwarded mail routes to review")
        if ("multilingual" in self.tags) != (self.labels.language != "en"):
            raise ValueError("tag multilingual goes with every language but en, and only with those")
        return self


def load_golden(path: Path | str = GOLDEN) -> list[GoldenCase]:
    """The cases of a golden JSONL file, validated; raises ``GoldenError`` naming file and line."""
    cases: list[GoldenCase] = []
    seen: set[str] = set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = GoldenCase.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise GoldenError(f"{path}:{number}: {exc}") from exc
        if case.id in seen:
            raise GoldenError(f"{path}:{number}: id {case.id} is used twice")
        seen.add(case.id)
        cases.append(case)
    return cases


def parse(case: GoldenCase) -> ParsedEmail:
    return parse_message(case.raw.encode("utf-8"), max_bytes=MAX_BYTES)


def visible_text(parsed: ParsedEmail) -> str:
    """What a person reading the message sees: every text part except CSS-hidden text and comments."""
    parts = (parsed.subject, parsed.text, parsed.quoted_text, parsed.signature, parsed.alternative_text)
    return "\n".join(parts)


def numbers_in(text: str) -> set[Decimal]:
    """Every value a number in ``text`` can mean, in either decimal convention (1.249,00 / 1,249.00)."""
    values: set[Decimal] = set()
    for token in _NUMBER.findall(text):
        digits = re.sub(r"[.,'’ \u00a0\u202f]", "", token)
        readings = {digits}
        if m := re.search(r"[.,](\d{1,2})$", token):
            readings.add(digits[: -len(m.group(1))] + "." + m.group(1))
        if m := re.search(r"[.,](\d{3})$", token):
            readings.add(re.sub(r"[.,'’ \u00a0\u202f]", "", token[: m.start()]) + "." + m.group(1))
        for reading in readings:
            try:
                values.add(Decimal(reading))
            except InvalidOperation:
                continue
    return values


def _headers(raw: str) -> str:
    return raw.split("\n\n", 1)[0]


def check_case(case: GoldenCase) -> list[str]:
    """What is wrong between the raw message and its labels (empty when nothing is)."""
    try:
        parsed = parse(case)
    except MessageRejected as exc:
        return [f"{case.id}: rejected by the parser: {exc}"]
    problems: list[str] = []
    head = _headers(case.raw)
    missing = [h for h in _REQUIRED_HEADERS if not re.search(rf"(?im)^{h}:", head)]
    if missing:
        problems.append(f"missing headers {missing}")
    if not parsed.message_id:
        problems.append("no Message-ID")
    if (parsed.sender_address or "").lower() != case.labels.sender.lower():
        problems.append(
            f"labelled sender {case.labels.sender} is not the From address {parsed.sender_address}"
        )
    text = visible_text(parsed)
    for order_id in case.labels.order_ids:
        digits = order_id.removeprefix("NW-")
        if not re.search(rf"(?i)(?:\bNW[\s-]?|#){digits}\b", text):
            problems.append(f"order id {order_id} is not in the text")
    unlabelled = sorted({f"NW-{d}" for d in _NW_IN_TEXT.findall(text)} - set(case.labels.order_ids))
    if unlabelled:
        problems.append(f"order ids in the text but not in the labels: {unlabelled}")
    numbers = numbers_in(text)
    problems += [
        f"amount {m.value} {m.currency} is not in the text"
        for m in case.labels.amounts
        if m.value not in numbers
    ]
    problems += _structure(case, parsed, head)
    return [f"{case.id}: {p}" for p in problems]


def _mime(raw: str) -> tuple[str, set[str], set[str]]:
    """(top-level content type, every part's content type, the transfer encodings of text parts)."""
    root = email.message_from_string(raw, policy=email.policy.compat32)
    types, encodings = set(), set()
    for part in root.walk():
        types.add(part.get_content_type())
        if part.get_content_maintype() == "text":
            encodings.add(str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower())
    return root.get_content_type(), types, encodings


def _structure(case: GoldenCase, parsed: ParsedEmail, head: str) -> list[str]:
    """Tags that describe the message's structure must be true of it."""
    tags = set(case.tags)
    top, types, encodings = _mime(case.raw)
    facts = {
        "html-only": top == "text/html",
        "multipart-alternative": "multipart/alternative" in types,
        "forwarded-attachment": "message/rfc822" in types,
        "thread-reply": bool(parsed.in_reply_to),
        "attachment": bool(parsed.attachments),
        "list-unsubscribe": parsed.list_unsubscribe,
        "encoded-header": "=?" in head,
        "quoted-printable": "quoted-printable" in encodings,
        "base64-body": "base64" in encodings,
        "8bit": "8bit" in encodings,
    }
    return [
        f"tag {tag} is {'set' if tag in tags else 'missing'} but the message says {fact}"
        for tag, fact in facts.items()
        if fact != (tag in tags)
    ]


def check_dataset(cases: list[GoldenCase]) -> list[str]:
    """Every case's problems plus Message-IDs used more than once."""
    problems = [p for case in cases for p in check_case(case)]
    ids = Counter(parse(case).message_id for case in cases)
    problems += [f"Message-ID {mid} is used {n} times" for mid, n in ids.items() if mid and n > 1]
    return problems


def summary(cases: list[GoldenCase]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {k: Counter() for k in ("intent", "language", "route", "tag")}
    for case in cases:
        counts["intent"][case.labels.intent.value] += 1
        counts["language"][case.labels.language] += 1
        counts["route"][case.labels.route] += 1
        counts["tag"].update(case.tags)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.golden", description="Validate a golden dataset")
    parser.add_argument(
        "--check", metavar="PATH", type=Path, required=True, help="validate a golden JSONL file"
    )
    args = parser.parse_args(argv)
    try:
        cases = load_golden(args.check)
    except GoldenError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{len(cases)} cases in {args.check}; {sum(c.labels.high_stakes for c in cases)} high-stakes")
    for name, counter in summary(cases).items():
        rows = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        print(f"\n{name}:\n" + "\n".join(f"  {key:<28} {n}" for key, n in rows))
    problems = check_dataset(cases)
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print(f"\n{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
