"""Extracted fields against their labels: normalisation, per-case differences, micro-averaged P/R/F1.

Every field is compared as a set of normalised items, so one rule covers lists and single values:
a single value is a set of one (``None`` is the empty set) and ``legal_threat`` counts its positive
class only (``True`` is ``{True}``, ``False`` is empty). Normalisation forgives spelling, not facts:

- order ids: upper case; ``NW 21847``, ``NW21847``, ``#21847`` and a bare ``21847`` are ``NW-21847``;
- amounts: the value to two decimals (``"129.9"``, ``129.90`` and ``Decimal("129.900")`` are equal)
  with the ISO currency upper-cased; an unreadable value is kept as written and never matches;
- sender: lower case; company: case, spacing and trailing punctuation ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from evals.golden import GoldenLabels

FIELDS: tuple[str, ...] = (
    "order_ids",
    "amounts",
    "sender",
    "company",
    "language",
    "urgency",
    "legal_threat",
)
_ORDER = re.compile(r"^(?:NW[\s-]?|#)?(\d{3,8})$")
_CENTS = Decimal("0.01")
Items = set[Any]


def norm_order_id(value: str) -> str:
    text = value.strip().upper()
    m = _ORDER.match(text)
    return f"NW-{m.group(1)}" if m else text


def norm_amount(value: object, currency: object) -> tuple[str, str]:
    code = str(currency or "").strip().upper()
    try:
        amount = Decimal(str(value).strip()).quantize(_CENTS)
    except (InvalidOperation, ValueError):
        return (f"?{value}", code)
    return (f"{amount:f}", code)


def norm_text(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split()).strip(" .,;").casefold()
    return text or None


def _single(value: object) -> Items:
    return set() if value is None else {value}


def expected_items(labels: GoldenLabels) -> dict[str, Items]:
    """The labels as normalised item sets, one per field."""
    return {
        "order_ids": {norm_order_id(o) for o in labels.order_ids},
        "amounts": {norm_amount(m.value, m.currency) for m in labels.amounts},
        "sender": {labels.sender.lower()},
        "company": _single(norm_text(labels.company)),
        "language": {labels.language},
        "urgency": {labels.urgency},
        "legal_threat": {True} if labels.legal_threat else set(),
    }


def observed_items(extraction: Mapping[str, Any] | None) -> dict[str, Items]:
    """An extraction (``agent.schemas.Extraction`` as JSON) as item sets; none: every set empty."""
    if extraction is None:
        return {name: set() for name in FIELDS}
    sender = extraction.get("sender_email")
    return {
        "order_ids": {norm_order_id(str(o)) for o in extraction.get("order_ids") or []},
        "amounts": {norm_amount(m.get("value"), m.get("currency")) for m in extraction.get("amounts") or []},
        "sender": _single(str(sender).strip().lower() if sender else None),
        "company": _single(norm_text(extraction.get("company"))),
        "language": _single(extraction.get("language")),
        "urgency": _single(extraction.get("urgency")),
        "legal_threat": {True} if extraction.get("legal_threat") else set(),
    }


def _show(items: Items) -> list[Any]:
    shown = [" ".join(i) if isinstance(i, tuple) else i for i in items]
    return sorted(shown, key=str)


def field_diffs(expected: Mapping[str, Items], observed: Mapping[str, Items]) -> dict[str, dict[str, Any]]:
    """The fields that differ: ``{field: {"expected": [...], "actual": [...]}}`` (amounts as "9.90 EUR")."""
    return {
        name: {"expected": _show(expected[name]), "actual": _show(observed[name])}
        for name in FIELDS
        if expected[name] != observed[name]
    }


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 with their counts; a ratio with nothing to divide by is ``None``."""
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def set_counts(expected: Items, observed: Items) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one field of one case."""
    return len(expected & observed), len(observed - expected), len(expected - observed)


def field_scores(
    pairs: Iterable[tuple[Mapping[str, Items], Mapping[str, Items]]],
) -> dict[str, dict[str, Any]]:
    """Micro-averaged P/R/F1 per field over (expected, observed) item sets of many cases."""
    totals = {name: [0, 0, 0] for name in FIELDS}
    for expected, observed in pairs:
        for name in FIELDS:
            for i, n in enumerate(set_counts(expected[name], observed[name])):
                totals[name][i] += n
    return {name: prf(*counts) for name, counts in totals.items()}
