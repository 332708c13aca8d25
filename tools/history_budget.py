"""The history's token budget: what reaches the planner's prompt is bounded, and says what it left out.

Tokens are counted approximately, as characters / 4 rounded up (OpenAI's rule of thumb for
English; other languages and placeholders run a little denser, so leave headroom in
``MAILSPINE_HISTORY__TOKEN_BUDGET``). What is counted is the exact line the prompt gets
(``format_line``), label included. Items are taken in priority order (``PRIORITY``; within a
source in the order its tool returned them, best first); the first item that does not fit is cut
to the room left when at least ``MIN_CUT_TOKENS`` remain, and everything after it is left out.
A last line then says how many items of which source were cut or left out; room for it is kept
inside the budget.
"""

from __future__ import annotations

import math
from collections import Counter

from tools.history import HistoryEntry

# Lower comes first: the conversation itself, then the sender's open matters, then the rest.
PRIORITY = {
    ("mailspine.emails", "thread"): 0,
    ("crm.tickets", None): 1,
    ("mailspine.emails", "sender"): 2,
    ("semantic", None): 3,
    ("crm.deals", None): 4,
    ("crm.notes", None): 5,
    ("mailspine.emails", "company"): 6,
}
MARKER_TOKENS = 64  # kept free for the "left out" line when not everything fits
MIN_CUT_TOKENS = 16  # a cut item shorter than this says nothing useful: leave it out instead


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def label(item: HistoryEntry) -> str:
    return f"{item.source}/{item.via}" if item.via else item.source


def format_line(item: HistoryEntry) -> str:
    """The line the planner's prompt gets for one item (``agent/nodes/history.py`` datamarks it)."""
    return f"- ({label(item)} {item.ref}) {item.summary}"


def priority(item: HistoryEntry) -> int:
    key = (item.source, item.via if item.source == "mailspine.emails" else None)
    return PRIORITY.get(key, len(PRIORITY))


def bound(items: list[HistoryEntry], *, budget: int) -> list[HistoryEntry]:
    """``items`` in priority order, cut to fit ``budget`` tokens, with a marker when any were."""
    ordered = sorted(items, key=priority)  # stable: each tool's own order (best first) stays
    if sum(approx_tokens(format_line(i)) for i in ordered) <= budget:
        return ordered
    room = budget - MARKER_TOKENS
    kept: list[HistoryEntry] = []
    cut: Counter[str] = Counter()
    omitted: Counter[str] = Counter()
    for item in ordered:
        cost = approx_tokens(format_line(item))
        if not omitted and cost <= room:
            kept.append(item)
            room -= cost
            continue
        if not omitted and not cut and room >= MIN_CUT_TOKENS:
            overhead = len(format_line(item)) - len(item.summary)
            chars = room * 4 - overhead - 1
            if chars >= 8:
                kept.append(item.model_copy(update={"summary": item.summary[:chars].rstrip() + "…"}))
                cut[label(item)] += 1
                room = 0
                continue
        omitted[label(item)] += 1
    parts = [f"{n} {source}" for source, n in sorted(omitted.items())]
    text = f"left out for the token budget ({budget}): " + (", ".join(parts) or "none")
    if cut:
        text += "; cut short: " + ", ".join(f"{n} {source}" for source, n in sorted(cut.items()))
    kept.append(HistoryEntry(source="mailspine.history", ref="budget", summary=text))
    return kept
