"""What every guard stage returns, and the text the model will see."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from agent.inputs import ScannerResult
from gateway.mime import ParsedEmail

Decision = Literal["pass", "flag", "quarantine"]


@dataclass(frozen=True)
class Finding:
    result: ScannerResult
    redact: tuple[str, ...] = ()  # literal strings to remove from the text the agent sees (secrets)
    note: str | None = None  # partial coverage (capped, truncated): goes to ``Verdict.degraded``
    attributes: tuple[
        tuple[str, str | int | float], ...
    ] = ()  # extra span attributes (the detector's backend)


def result(name: str, start: float, decision: Decision, score: float, reasons: list[str]) -> ScannerResult:
    """A ``ScannerResult`` timed from ``start`` (``time.perf_counter()``); the score is clipped to [0, 1]
    (llm-guard reports -1 for "not applicable")."""
    latency = (time.perf_counter() - start) * 1000
    return ScannerResult(
        name=name,
        decision=decision,
        score=min(1.0, max(0.0, score)),
        latency_ms=round(latency, 3),
        reasons=reasons,
    )


def model_text(parsed: ParsedEmail) -> str:
    """Everything of the email that reaches the model (hidden HTML text never does)."""
    parts = (parsed.subject, parsed.text, parsed.quoted_text, parsed.signature)
    return "\n".join(part for part in parts if part)
