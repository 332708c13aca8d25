"""The guard pipeline: raw bytes in, ``GuardedEmail`` (or ``MessageRejected``) out."""

from __future__ import annotations

import re

from agent.inputs import CalendarEvent, GuardedEmail, ScannerResult, Verdict
from app.errors import MessageRejected
from app.telemetry import tracer
from gateway.mime import ParsedEmail, parse_message
from gateway.scanners import DEFAULT_SCANNERS, Scanner, strip_invisible
from tools.mailbox_dir import TRUNCATED_HEADER

_TRUNCATED = re.compile(rb"(?im)^" + TRUNCATED_HEADER.encode() + rb": original size (\d+)")
_RANK = {"pass": 0, "flag": 1, "quarantine": 2}


def combine(results: list[ScannerResult], *, degraded: list[str] | None = None) -> Verdict:
    worst = max(results, key=lambda r: _RANK[r.decision], default=None)
    return Verdict(
        decision=worst.decision if worst else "pass",
        reasons=[reason for r in results for reason in r.reasons],
        scanners=results,
        degraded=degraded or [],
    )


def guard(
    parsed: ParsedEmail, *, email_id: int, scanners: tuple[Scanner, ...] = DEFAULT_SCANNERS
) -> GuardedEmail:
    with tracer().start_as_current_span("apply_guardrail gateway") as span:
        results = [scan(parsed) for scan in scanners]
        verdict = combine(results, degraded=["prompt_injection_model", "pii_ner"])
        span.set_attribute("gen_ai.operation.name", "apply_guardrail")
        span.set_attribute("mailspine.email_id", email_id)
        span.set_attribute("mailspine.guardrail.decision", verdict.decision)
        span.set_attribute("mailspine.guardrail.scanners", [r.name for r in results])
        span.set_attribute("mailspine.guardrail.degraded", verdict.degraded)
        for r in results:
            span.set_attribute(f"mailspine.guardrail.{r.name}.score", r.score)
            span.set_attribute(f"mailspine.guardrail.{r.name}.latency_ms", r.latency_ms)
        return GuardedEmail(
            email_id=email_id,
            message_id=parsed.message_id or f"<missing-{email_id}@mailspine.invalid>",
            subject=strip_invisible(parsed.subject),
            sender_address=parsed.sender_address,
            sender_name=parsed.sender_name,
            to=parsed.to,
            sent_at=parsed.sent_at,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            text=strip_invisible(parsed.text),
            quoted_text=strip_invisible(parsed.quoted_text),
            signature=strip_invisible(parsed.signature),
            forwarded=parsed.forwarded,
            attachments=parsed.attachments,
            calendar=[CalendarEvent(**vars(c)) for c in parsed.calendar],
            verdict=verdict,
        )


def scan_raw(raw: bytes, *, email_id: int, max_bytes: int) -> tuple[ParsedEmail, GuardedEmail]:
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
    return parsed, guard(parsed, email_id=email_id)
