"""The offline model: a deterministic, rule-based ``Extraction`` from an email's text.

Used when no LLM is reachable (tests, demos, air-gapped runs). Pure functions, no I/O. Keyword
tables live in ``offline_lexicon``. The body is untrusted: it is only ever matched against
patterns, never copied into the summary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from functools import cache

from agent.models import offline_lexicon as lex
from agent.schemas import Extraction, Intent, Money, Urgency

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\u00ad"))
_ORDER_ID = re.compile(r"\bNW-\d{5,6}\b", re.IGNORECASE)
_NUMBER = r"\d{1,3}(?:[.,'\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?<![\w.,-])(?:(?P<pre>{lex.CURRENCY_PREFIX})\s?(?P<num1>{_NUMBER})"
    rf"|(?P<num2>{_NUMBER})\s?(?P<suf>{lex.CURRENCY_SUFFIX}))(?!\w)",
    re.IGNORECASE,
)
_REPLY_HEADER = re.compile(
    rf"^(?:{lex.REPLY_OPENERS})\b[^\n]{{0,200}}(?:\n[^\n]{{0,200}})?(?:{lex.REPLY_VERBS}):[ \t]*$",
    re.MULTILINE,
)
_FORWARD = re.compile(rf"^{lex.FORWARD_MARKERS}", re.MULTILINE | re.IGNORECASE)
_LEGAL_SUFFIX = r"(?:GmbH|AG|KG|Ltd\.?|Limited|Inc\.?|LLC|LLP|PLC|S\.A\.S?|SARL|SAS|S\.L\.|B\.V\.|Corp\.?)"
_COMPANY_LINE = re.compile(rf"^\s*((?:[A-Z0-9][\w&'.-]*\s){{1,5}}{_LEGAL_SUFFIX})(?!\w)")
_COMPANY_PHRASE = re.compile(
    rf"\b(?:at|from|with|for|bei|von|chez|de)\s+((?:[A-Z][\w&'-]*\s){{1,5}}{_LEGAL_SUFFIX})(?!\w)"
)
# Only the start of the text is analysed: enough for any real message, and it bounds the run time.
MAX_CHARS = 20_000
_SPAM_THRESHOLD = 2
_NEWSLETTER_THRESHOLD = 2
_TIEBREAK = {intent: rank for rank, intent in enumerate(lex.INTENT_PRIORITY)}


def extract(*, subject: str, body: str, sender: str | None) -> Extraction:
    """Extract structured facts from one email using keyword and regex rules."""
    subject = clean(subject or "")
    text = f"{subject}\n{new_text(clean(body or ''))}"[:MAX_CHARS]
    folded = fold(text)
    intent, confidence = classify(folded)
    legal = intent not in (Intent.SPAM, Intent.NEWSLETTER) and _count(lex.LEGAL_THREAT, folded) > 0
    if legal:
        intent, confidence = Intent.COMPLAINT, 0.9
    name, email = parse_sender(sender)
    order_ids = find_order_ids(text)
    amounts = find_amounts(text)
    return Extraction(
        intent=intent,
        sender_name=name,
        sender_email=email,
        company=find_company(text),
        order_ids=order_ids,
        amounts=amounts,
        urgency=urgency(intent, legal, folded),
        language=detect_language(folded),
        legal_threat=legal,
        summary=summarize(subject, intent, order_ids, amounts, legal),
        confidence=confidence,
    )


# ----------------------------------------------------------------------------- text preparation
def clean(text: str) -> str:
    """Normalise Unicode, drop invisible characters and unify line endings."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def fold(text: str) -> str:
    """Lower-case and strip accents, for keyword matching (``Rückerstattung`` -> ``ruckerstattung``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def new_text(body: str) -> str:
    """The part of a reply the sender wrote now: cut at "On ... wrote:" and drop "> " lines."""
    cut = len(body)
    for pattern in (_REPLY_HEADER, _FORWARD):
        match = pattern.search(body)
        if match:
            cut = min(cut, match.start())
    kept = [line for line in body[:cut].split("\n") if not line.lstrip().startswith(">")]
    fresh = "\n".join(kept).strip()
    if fresh:
        return fresh
    return "\n".join(line.lstrip("> ") for line in body.split("\n")).strip()


# ----------------------------------------------------------------------------- classification
@cache
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One alternation per table; every keyword must start at a word boundary."""
    joined = "|".join(f"(?:{p})" for p in patterns).replace(" ?", r"\s*").replace(" ", r"\s+")
    return re.compile(rf"(?<!\w)(?:{joined})")


def _count(patterns: tuple[str, ...], folded: str) -> int:
    return sum(1 for _ in _compiled(patterns).finditer(folded))


def classify(folded: str) -> tuple[Intent, float]:
    """Pick the intent and a confidence: 0.9 clear, 0.6 competing classes, 0.4 nothing matched."""
    if _count(lex.INJECTION, folded):
        return Intent.SPAM, 0.9
    scores = {intent: _count(patterns, folded) for intent, patterns in lex.INTENT_KEYWORDS.items()}
    for gated, threshold in ((Intent.SPAM, _SPAM_THRESHOLD), (Intent.NEWSLETTER, _NEWSLETTER_THRESHOLD)):
        if scores[gated] >= threshold:
            return gated, 0.9
    hits = {intent: score for intent, score in scores.items() if score > 0}
    if not hits:
        return Intent.OTHER, 0.4
    best = max(hits, key=lambda intent: (hits[intent], -_TIEBREAK[intent]))
    return best, 0.9 if len(hits) == 1 else 0.6


def urgency(intent: Intent, legal: bool, folded: str) -> Urgency:
    if intent in (Intent.SPAM, Intent.NEWSLETTER):
        return "low"
    if legal or _count(lex.URGENT, folded):
        return "high"
    return "normal"


def detect_language(folded: str) -> str:
    """Guess en/de/fr/es from stopword counts; English when nothing stands out."""
    words = re.findall(r"[a-z]+", folded)
    counts = {lang: sum(word in stops for word in words) for lang, stops in lex.STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > counts["en"] else "en"


# ----------------------------------------------------------------------------- entities
def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def find_order_ids(text: str) -> list[str]:
    """Order ids look like NW-48213; phone, invoice and postal numbers never carry the prefix."""
    return _unique(match.upper() for match in _ORDER_ID.findall(text))[:20]


def parse_number(raw: str) -> Decimal | None:
    """Parse ``1,249.00``, ``1.249,00``, ``2,400``, ``24,90`` or ``5000`` into a Decimal."""
    digits = re.sub(r"[\s'\u00a0\u202f]", "", raw)
    last_sep = max(digits.rfind("."), digits.rfind(","))
    if last_sep >= 0 and len(digits) - last_sep - 1 in (1, 2):
        whole, fraction = digits[:last_sep], digits[last_sep + 1 :]
    else:
        whole, fraction = digits, "0"
    try:
        return Decimal(f"{re.sub(r'[.,]', '', whole) or '0'}.{fraction}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def find_amounts(text: str) -> list[Money]:
    amounts: list[Money] = []
    for match in _AMOUNT.finditer(text):
        symbol = (match.group("pre") or match.group("suf")).lower()
        value = parse_number(match.group("num1") or match.group("num2"))
        money = Money(value=value, currency=lex.CURRENCY_CODES[symbol]) if value is not None else None
        if money is not None and money not in amounts:
            amounts.append(money)
    return amounts[:20]


def parse_sender(sender: str | None) -> tuple[str | None, str | None]:
    raw_name, raw_address = parseaddr(clean(sender or ""))
    name = " ".join(raw_name.split())[:200] or None
    address = raw_address.strip()
    return name, address if "@" in address and len(address) <= 320 else None


def find_company(text: str) -> str | None:
    """A company with a legal form (GmbH, Ltd, Inc, ...) from the signature or "at <Company>"."""
    for line in reversed(text.strip().split("\n")[-10:]):
        match = _COMPANY_LINE.match(line)
        if match:
            return match.group(1).strip()[:200]
    match = _COMPANY_PHRASE.search(text)
    return match.group(1).strip()[:200] if match else None


def summarize(subject: str, intent: Intent, order_ids: list[str], amounts: list[Money], legal: bool) -> str:
    """A neutral summary from the subject and extracted facts; never quotes the body."""
    topic = " ".join(subject.split())[:160] or "(no subject)"
    parts = [f'{lex.INTENT_LABELS[intent]} with subject "{topic}".']
    if order_ids:
        parts.append(f"Order(s): {', '.join(order_ids[:5])}.")
    if amounts:
        parts.append(f"Amount(s): {', '.join(f'{a.value} {a.currency}' for a in amounts[:5])}.")
    if legal:
        parts.append("The sender threatens legal action.")
    return " ".join(parts)[:500]
