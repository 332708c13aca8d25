"""The guard pipeline: raw bytes in, ``GuardedEmail`` (or ``MessageRejected``) out.

The scanners live in ``gateway.scanners`` (mailspine's heuristics) and ``gateway.guards``
(llm-guard, model-backed scanners, the semantic detector); ``GuardPipeline`` runs them. Without a
``pipeline`` argument the process's default one is used (``configure_default_pipeline``).
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from agent.inputs import CalendarEvent, GuardedEmail, ScannerResult, Verdict
from app.errors import MessageRejected
from app.telemetry import tracer
from gateway.guards.pipeline import GuardPipeline, default_pipeline
from gateway.mime import ParsedEmail, parse_message
from gateway.scanners import Scanner, strip_invisible
from tools.mailbox_dir import TRUNCATED_HEADER

_TRUNCATED = re.compile(rb"(?im)^" + TRUNCATED_HEADER.encode() + rb": original size (\d+)")
_RANK = {"pass": 0, "flag": 1, "quarantine": 2}
SECRET_PLACEHOLDER = "[secret redacted]"


def combine(results: list[ScannerResult], *, degraded: list[str] | None = None) -> Verdict:
    """The worst decision wins. Reasons come from the scanners that flagged or quarantined (a passing
    scanner's notes stay in its own result)."""
    worst = max(results, key=lambda r: _RANK[r.decision], default=None)
    return Verdict(
        decision=worst.decision if worst else "pass",
        reasons=[reason for r in results if r.decision != "pass" for reason in r.reasons],
        scanners=results,
        degraded=degraded or [],
    )


def _clean(text: str, secrets: list[str]) -> str:
    text = strip_invisible(text)
    for secret in secrets:
        text = text.replace(secret, SECRET_PLACEHOLDER)
    return text


def sender_problem(address: str | None) -> str | None:
    """Why mail to ``address`` cannot be delivered (no DNS lookup: syntax and reserved names), or None."""
    if not address:
        return "no sender address"
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)[:200]
    return None


def guard(
    parsed: ParsedEmail,
    *,
    email_id: int,
    scanners: tuple[Scanner, ...] | None = None,
    pipeline: GuardPipeline | None = None,
) -> GuardedEmail:
    """Scan ``parsed``; ``scanners`` replaces the heuristics (tests), ``pipeline`` the default pipeline."""
    pipeline = pipeline or default_pipeline()
    with tracer().start_as_current_span("apply_guardrail gateway") as span:
        outcome = pipeline.run(parsed, heuristics=scanners)
        results = outcome.results
        verdict = combine(results, degraded=outcome.degraded)
        secrets = sorted(set(outcome.redact), key=len, reverse=True)
        span.set_attribute("gen_ai.operation.name", "apply_guardrail")
        span.set_attribute("mailspine.email_id", email_id)
        span.set_attribute("mailspine.guardrail.decision", verdict.decision)
        span.set_attribute("mailspine.guardrail.scanners", [r.name for r in results])
        span.set_attribute("mailspine.guardrail.degraded", verdict.degraded)
        for r in results:
            span.set_attribute(f"mailspine.guardrail.{r.name}.score", r.score)
            span.set_attribute(f"mailspine.guardrail.{r.name}.latency_ms", r.latency_ms)
        for key, value in outcome.attributes.items():
            span.set_attribute(f"mailspine.guardrail.{key}", value)
        if secrets:
            span.set_attribute("mailspine.guardrail.redacted_secrets", len(secrets))
        return GuardedEmail(
            email_id=email_id,
            message_id=parsed.message_id or f"<missing-{email_id}@mailspine.invalid>",
            subject=_clean(parsed.subject, secrets),
            sender_address=parsed.sender_address,
            sender_name=parsed.sender_name,
            to=parsed.to,
            sent_at=parsed.sent_at,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            text=_clean(parsed.text, secrets),
            quoted_text=_clean(parsed.quoted_text, secrets),
            signature=_clean(parsed.signature, secrets),
            forwarded=parsed.forwarded,
            sender_problem=sender_problem(parsed.sender_address),
            attachments=parsed.attachments,
            calendar=[CalendarEvent(**vars(c)) for c in parsed.calendar],
            verdict=verdict,
        )


def scan_raw(
    raw: bytes, *, email_id: int, max_bytes: int, pipeline: GuardPipeline | None = None
) -> tuple[ParsedEmail, GuardedEmail]:
    """Parse then guard. Raises ``MessageRejected`` for input that is not a usable email."""
    with tracer().start_as_current_span("gateway parse") as span:
        span.set_attribute("mailspine.email_id", email_id)
        span.set_attribute("mailspine.size_bytes", len(raw))
        oversized = _TRUNCATED.search(raw[: 512 * 1024])
        if oversized:
            size = int(oversized.group(1))
            raise MessageRejected(f"message is {size} bytes, over the {max_bytes}-byte limit: headers stored")
        parsed = parse_message(raw, max_bytes=max_bytes)
        span.set_attribute("mailspine.mime.defects", len(parsed.defects))
    return parsed, guard(parsed, email_id=email_id, pipeline=pipeline)
