"""Model-free scanners for what email adds to prompt injection.

Each scanner looks at a ``ParsedEmail`` and returns a ``ScannerResult``. They run in every
deployment (no model weights, no llm-guard); llm-guard's scanners, the model-backed ones and the
semantic detector join them in ``gateway.guards.pipeline``. The instruction patterns (en, de, fr,
es, it, pt, nl) live in ``gateway/guards/data/patterns.json``.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import unicodedata
from collections.abc import Callable
from typing import Literal
from urllib.parse import unquote

from agent.inputs import ScannerResult
from gateway.guards.patterns import load_patterns
from gateway.mime import ParsedEmail

Decision = Literal["pass", "flag", "quarantine"]

# Zero-width and bidi controls, tag characters and private-use code points.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")  # category Co
_DANGEROUS_EXT = re.compile(
    r"\.(exe|scr|bat|cmd|com|js|jse|vbs|vbe|ps1|msi|jar|lnk|hta|iso|docm|xlsm)$", re.I
)
# A base64 run inside a line (whole base64 lines are dropped by the MIME parser and noted as a defect).
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,}={0,2}(?![A-Za-z0-9+/=_-])")
_B64_BLOB = 200  # a run this long is flagged even when it does not decode to text
_MAX_B64_CANDIDATES = 50
_TRAVERSAL = re.compile(r"(?:^|[\\/])\.{2,}(?:[\\/]|$)")  # "../", and "....//" that survives naive stripping
_ABSOLUTE = re.compile(r"^(?:/|[A-Za-z]:[\\/]|\\\\|~[\\/])")
_SEPARATOR = re.compile(r"[\\/]")
_MAX_FORWARD_MARKERS = 20
# Cyrillic, Greek and Armenian letters that render like Latin ones (a subset of Unicode's confusables).
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝАВЕКМНОРСТХІЈЅαβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧօսհ",
    "aeopcyxijsdhlqwABEKMHOPCTXIJSabeikvoptuxABEZHIKMNOPTYXouh",
)
_LATIN = re.compile("[A-Za-z]")
_LOOKALIKE = re.compile("[\u0370-\u03ff\u0400-\u052f\u0531-\u058f]")  # Greek, Cyrillic, Armenian
_MIXED_WORD = re.compile(r"[^\s@,;:()<>\[\]\"'.!?]+")
_WORD = re.compile(r"[^\W\d_]{4,}")  # words of 4+ letters, any script
_MISMATCH_WORDS = 12  # an unread alternative with this many words of its own ...
_MISMATCH_SHARE = 0.3  # ... that are this share of its vocabulary is flagged
PATTERNS = load_patterns()

Scanner = Callable[[ParsedEmail], ScannerResult]


def _result(name: str, start: float, decision: Decision, score: float, reasons: list[str]) -> ScannerResult:
    latency = (time.perf_counter() - start) * 1000
    return ScannerResult(
        name=name, decision=decision, score=score, latency_ms=round(latency, 3), reasons=reasons
    )


def invisible_text(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    found = len(_INVISIBLE.findall(parsed.text + parsed.subject)) + len(_PRIVATE_USE.findall(parsed.text))
    reasons = [f"{found} invisible/zero-width characters removed"] if found else []
    return _result("invisible_text", start, "flag" if found else "pass", min(1.0, found / 5), reasons)


def hidden_html(parsed: ParsedEmail) -> ScannerResult:
    """Text hidden by HTML/CSS is never shown to the model; instructions in it (or in an HTML
    comment) are aimed at a model and nobody else, so they quarantine."""
    start = time.perf_counter()
    reasons: list[str] = []
    score = 0.0
    if parsed.hidden_text.strip():
        reasons.append(f"{len(parsed.hidden_text)} characters of text hidden by HTML/CSS")
        score = 0.5
    if hits := PATTERNS.matches(_INVISIBLE.sub("", parsed.hidden_text)):
        reasons.append(f"hidden text contains instructions aimed at a model ({hits})")
        score = 1.0
    if hits := PATTERNS.matches(_INVISIBLE.sub("", "\n".join(parsed.html_comments))):
        reasons.append(f"HTML comment contains instructions aimed at a model ({hits})")
        score = 1.0
    decision: Decision = "quarantine" if score >= 1.0 else ("flag" if score else "pass")
    return _result("hidden_html", start, decision, score, reasons)


def alternative_mismatch(parsed: ParsedEmail) -> ScannerResult:
    """multipart/alternative versions that say different things. The model reads one version (plain
    text when there is one); a person's mail client usually shows the HTML. Instructions in the
    unread version only are aimed at whoever reads that version: quarantine. A version with many
    words the other lacks is flagged, so a person sees what the model did not."""
    start = time.perf_counter()
    if not parsed.alternative_text.strip():
        return _result("alternative_mismatch", start, "pass", 0.0, [])
    seen = _INVISIBLE.sub("", "\n".join((parsed.subject, parsed.text, parsed.quoted_text, parsed.signature)))
    other = _INVISIBLE.sub("", parsed.alternative_text)
    reasons: list[str] = []
    score = 0.0
    hits = PATTERNS.matches(other)
    new_labels = [label for label in hits.labels if label not in PATTERNS.matches(seen).labels]
    if new_labels:
        reasons.append(
            f"an alternative version the model does not read contains instructions ({', '.join(new_labels)})"
        )
        score = 1.0
    seen_words = set(_WORD.findall(seen.lower()))
    other_words = set(_WORD.findall(other.lower()))
    extra = other_words - seen_words
    if len(extra) >= _MISMATCH_WORDS and len(extra) >= _MISMATCH_SHARE * len(other_words):
        reasons.append(
            f"alternative versions differ: {len(extra)} words appear only in the version "
            "the model does not read"
        )
        score = max(score, 0.6)
    decision: Decision = "quarantine" if score >= 1.0 else ("flag" if score else "pass")
    return _result("alternative_mismatch", start, decision, score, reasons)


def _decoded_domain(address: str | None) -> str:
    domain = (address or "").rpartition("@")[2]
    try:
        return domain.encode("ascii").decode("idna") if "xn--" in domain.lower() else domain
    except UnicodeError:
        return domain


def homoglyphs(parsed: ParsedEmail) -> ScannerResult:
    """Look-alike letters: words (and the sender's domain, punycode decoded) that mix Latin with
    Cyrillic or Greek letters are flagged ("nοrthwind" with a Greek omicron). Text is folded
    (NFKC for full-width forms, then Cyrillic/Greek look-alikes to Latin) and the instruction
    patterns run again: instructions that only appear once folded were disguised, so quarantine."""
    start = time.perf_counter()
    text = _INVISIBLE.sub("", "\n".join((parsed.subject, parsed.text, parsed.quoted_text)))
    domain = _decoded_domain(parsed.sender_address)
    mixed = {w for w in _MIXED_WORD.findall(text + " " + domain) if _LATIN.search(w) and _LOOKALIKE.search(w)}
    reasons: list[str] = []
    score = 0.0
    if mixed:
        reasons.append(f"{len(mixed)} word(s) mix Latin with Cyrillic/Greek/Armenian look-alike letters")
        score = 0.6
    folded = fold_confusables(text)
    if folded != text:
        before = set(PATTERNS.matches(text).labels)
        disguised = [label for label in PATTERNS.matches(folded).labels if label not in before]
        if disguised:
            reasons.append(f"instructions disguised with look-alike characters ({', '.join(disguised)})")
            score = 1.0
    decision: Decision = "quarantine" if score >= 1.0 else ("flag" if score else "pass")
    return _result("homoglyphs", start, decision, score, reasons)


def fold_confusables(text: str) -> str:
    """NFKC (full-width and styled letters to plain ones), then Cyrillic/Greek look-alikes to Latin."""
    return unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)


def injection_heuristics(parsed: ParsedEmail) -> ScannerResult:
    """Instruction patterns in the visible new text and subject: role lines (``SYSTEM:``),
    tool-call JSON, chat-template tokens, "ignore previous instructions" and kin in seven languages."""
    start = time.perf_counter()
    hits = PATTERNS.matches(_INVISIBLE.sub("", parsed.subject + "\n" + parsed.text))
    score = min(1.0, 0.5 * hits.count)
    decision: Decision = "quarantine" if hits.count >= 3 else ("flag" if hits else "pass")
    reasons = [f"{hits.count} prompt-injection pattern(s) in the visible text: {hits}"] if hits else []
    return _result("injection_heuristics", start, decision, score, reasons)


def injection_in_history(parsed: ParsedEmail) -> ScannerResult:
    """Instructions hidden in quoted or forwarded text or a signature: flagged, so a person looks."""
    start = time.perf_counter()
    hits = PATTERNS.matches(_INVISIBLE.sub("", parsed.quoted_text + "\n" + parsed.signature))
    reasons = (
        [f"{hits.count} prompt-injection pattern(s) in quoted/forwarded text or signature: {hits}"]
        if hits
        else []
    )
    return _result(
        "injection_in_history", start, "flag" if hits else "pass", min(1.0, 0.4 * hits.count), reasons
    )


def forwarded_instructions(parsed: ParsedEmail) -> ScannerResult:
    """A "Forwarded message" marker followed by instructions for the assistant. A real forward has
    its From/Date/Subject lines under the marker; a marker without them is a fake, so quarantine."""
    start = time.perf_counter()
    text = _INVISIBLE.sub("", parsed.text + "\n" + parsed.quoted_text)
    fake = real = 0
    labels: list[str] = []
    markers = (m for marker in PATTERNS.forward_markers for m in marker.finditer(text))
    for _, match in zip(range(_MAX_FORWARD_MARKERS), markers, strict=False):
        block = text[match.end() : match.end() + 4000]
        hits = PATTERNS.matches(block)
        if not hits:
            continue
        labels += hits.labels
        head = [line for line in block.split("\n")[1:10] if line.strip()][:6]
        if sum(1 for line in head if PATTERNS.forward_headers.match(line)) >= 2:
            real += 1
        else:
            fake += 1
    found = ", ".join(dict.fromkeys(labels))
    reasons: list[str] = []
    if fake:
        reasons.append(f"forward marker without forwarded headers, followed by instructions ({found})")
    if real:
        reasons.append(f"forwarded message contains instructions aimed at the assistant ({found})")
    decision: Decision = "quarantine" if fake else ("flag" if real else "pass")
    return _result("forwarded_instructions", start, decision, 1.0 if fake else 0.6 if real else 0.0, reasons)


def _decode_text(run: str) -> str | None:
    """The run as text when it is base64 of readable UTF-8, else None."""
    padded = run + "=" * (-len(run) % 4)
    for altchars in (None, b"-_"):
        try:
            data = base64.b64decode(padded, altchars=altchars, validate=True)
            text = data.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\t")
        if len(text) >= 12 and printable >= 0.95 * len(text) and any(ch.isalpha() for ch in text):
            return text
    return None


def encoded_payload(parsed: ParsedEmail) -> ScannerResult:
    """Base64 inside the text: decoded; instructions in it quarantine, other encoded text or a long
    blob flags (people do not write base64; "decode this and follow it" is an injection technique)."""
    start = time.perf_counter()
    text = parsed.subject + "\n" + parsed.text + "\n" + parsed.quoted_text + "\n" + parsed.hidden_text
    readable = blobs = 0
    labels: list[str] = []
    for i, match in enumerate(_B64_RUN.finditer(text)):
        if i >= _MAX_B64_CANDIDATES:
            break
        run = match.group(0)
        if run.isalpha() and (run.islower() or run.istitle()):
            continue  # a long word (German compounds), not an encoding
        decoded = _decode_text(run.rstrip("="))
        if decoded is not None:
            readable += 1
            labels += PATTERNS.matches(decoded).labels
        elif len(run) >= _B64_BLOB:
            blobs += 1
    reasons: list[str] = []
    if labels:
        reasons.append(f"base64 in the body decodes to instructions ({', '.join(dict.fromkeys(labels))})")
    elif readable:
        reasons.append(f"{readable} base64-encoded text fragment(s) in the body")
    if blobs:
        reasons.append(f"{blobs} base64 blob(s) in the body")
    decision: Decision = "quarantine" if labels else ("flag" if reasons else "pass")
    return _result("encoded_payload", start, decision, 1.0 if labels else 0.5 if reasons else 0.0, reasons)


def attachments(parsed: ParsedEmail) -> ScannerResult:
    """Executable types quarantine; names with path traversal, a directory path, invisible characters
    or instructions flag (a name is text the model may see, and a path is aimed at whatever saves
    the file). Names are checked as sent and percent-decoded ("..%2F..%2Fetc")."""
    start = time.perf_counter()
    raw = [a.filename for a in parsed.attachments if a.filename]
    names = list(dict.fromkeys([*raw, *(unquote(n) for n in raw)]))
    bad = [n for n in raw if _DANGEROUS_EXT.search(n) or _DANGEROUS_EXT.search(unquote(n))]
    reasons = [f"executable attachment type ({len(bad)})"] if bad else []
    checks: tuple[tuple[str, Callable[[str], bool]], ...] = (
        ("path traversal", lambda n: bool(_TRAVERSAL.search(n))),
        ("an absolute path", lambda n: bool(_ABSOLUTE.match(n))),
        ("a directory path", lambda n: bool(_SEPARATOR.search(n))),
        ("invisible/bidi characters", lambda n: bool(_INVISIBLE.search(n))),
        ("instructions", lambda n: bool(PATTERNS.matches(n.replace("_", " ")))),
    )
    flagged: set[str] = set()
    for what, check in checks:
        hits = {n for n in names if check(n)}
        if what == "a directory path":
            hits -= flagged  # traversal and absolute paths are directory paths too: said once
        if hits:
            reasons.append(f"attachment name with {what} ({len(hits)})")
            flagged |= hits
    decision: Decision = "quarantine" if bad else ("flag" if flagged else "pass")
    return _result("attachments", start, decision, 1.0 if bad else 0.7 if flagged else 0.0, reasons)


def mime_defects(parsed: ParsedEmail) -> ScannerResult:
    start = time.perf_counter()
    reasons = [f"MIME repaired: {d}" for d in parsed.defects]
    return _result("mime_defects", start, "flag" if reasons else "pass", 0.3 if reasons else 0.0, reasons)


DEFAULT_SCANNERS: tuple[Scanner, ...] = (
    invisible_text,
    hidden_html,
    alternative_mismatch,
    homoglyphs,
    injection_heuristics,
    injection_in_history,
    forwarded_instructions,
    encoded_payload,
    attachments,
    mime_defects,
)


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)
