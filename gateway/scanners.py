"""Model-free scanners for what email adds to prompt injection.

Each scanner looks at a ``ParsedEmail`` and returns a ``ScannerResult``. They run in every
deployment (no model weights needed); model-backed llm-guard scanners join the pipeline when a
local model path is configured (gateway issue).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable
from typing import Literal

from agent.inputs import ScannerResult
from gateway.mime import ParsedEmail

Decision = Literal["pass", "flag", "quarantine"]

# Zero-width and bidi controls, tag characters and private-use code points.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")

_INJECTION = [
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|your)\b.{0,30}"
        r"\b(instructions?|rules?|prompts?|guidelines)",
        r"^\s*(system|assistant|developer)\s*:",
        r"\byou are now\b|\bact as (an?|the) (admin|system|assistant)\b|\bnew instructions?\b",
        r"\bignorier\w*\b.{0,40}\b(anweisungen|regeln)\b",
        r"\bignore[zr]?\b.{0,40}\binstructions\b",
        r"\bignora\w*\b.{0,40}\binstrucciones\b",
        r"\"(tool_calls?|function_call|tool_use)\"\s*:|<\s*(tool_call|function_calls?)\s*>",
        r"\b(issue|approve|process)\b.{0,30}\b(full )?refund\b.{0,60}\bwithout\b.{0,20}"
        r"\b(review|approval|verification)",
    )
]
_DANGEROUS_EXT = re.compile(
    r"\.(exe|scr|bat|cmd|com|js|jse|vbs|vbe|ps1|msi|jar|lnk|hta|iso|docm|xlsm)$", re.I
)
_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")

Scanner = Callable[[ParsedEmail], ScannerResult]


def _result(name: str, start: float, decision: Decision, score: float, reasons: list[str]) -> ScannerResult:
    latency = (time.perf_counter() - start) * 1000
    return ScannerResult(
        name=name, decision=decision, score=score, latency_ms=round(latency, 3), reasons=reasons
    )


def invisible_text(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    found = len(_INVISIBLE.findall(parsed.text + parsed.subject))
    found += sum(1 for ch in parsed.text if unicodedata.category(ch) == "Co")
    reasons = [f"{found} invisible/zero-width characters removed"] if found else []
    return _result("invisible_text", start, "flag" if found else "pass", min(1.0, found / 5), reasons)


def hidden_html(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    reasons: list[str] = []
    score = 0.0
    hidden = parsed.hidden_text + "\n" + "\n".join(parsed.html_comments)
    if parsed.hidden_text.strip():
        reasons.append(f"{len(parsed.hidden_text)} characters of text hidden by HTML/CSS")
        score = 0.5
    if any(p.search(hidden) for p in _INJECTION):
        reasons.append("hidden text contains instructions aimed at a model")
        score = 1.0
    decision: Decision = "quarantine" if score >= 1.0 else ("flag" if score else "pass")
    return _result("hidden_html", start, decision, score, reasons)


def injection_heuristics(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    text = _INVISIBLE.sub("", parsed.subject + "\n" + parsed.text)
    hits = [p.pattern[:60] for p in _INJECTION if p.search(text)]
    if _BASE64_BLOB.search(text):
        hits.append("base64 blob in the body")
    score = min(1.0, 0.5 * len(hits))
    decision: Decision = "quarantine" if len(hits) >= 3 else ("flag" if hits else "pass")
    reasons = [f"{len(hits)} prompt-injection pattern(s) in the visible text"] if hits else []
    return _result("injection_heuristics", start, decision, score, reasons)


def injection_in_history(parsed: ParsedEmail) -> ScannerResult:
    """Instructions hidden in quoted or forwarded text or a signature: flagged, so a person looks."""
    start = time.perf_counter()
    text = _INVISIBLE.sub("", parsed.quoted_text + "\n" + parsed.signature)
    hits = sum(1 for p in _INJECTION if p.search(text))
    reasons = [f"{hits} prompt-injection pattern(s) in quoted/forwarded text or signature"] if hits else []
    return _result("injection_in_history", start, "flag" if hits else "pass", min(1.0, 0.4 * hits), reasons)


def attachments(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    bad = [a.filename for a in parsed.attachments if a.filename and _DANGEROUS_EXT.search(a.filename)]
    reasons = [f"executable attachment type ({len(bad)})"] if bad else []
    return _result("attachments", start, "quarantine" if bad else "pass", 1.0 if bad else 0.0, reasons)


def mime_defects(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    reasons = [f"MIME repaired: {d}" for d in parsed.defects]
    return _result("mime_defects", start, "flag" if reasons else "pass", 0.3 if reasons else 0.0, reasons)


DEFAULT_SCANNERS: tuple[Scanner, ...] = (
    invisible_text,
    hidden_html,
    injection_heuristics,
    injection_in_history,
    attachments,
    mime_defects,
)


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)
