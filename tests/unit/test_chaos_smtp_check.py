"""The crash-safety suite's SMTP promise (tests/chaos/checks.py): duplicates and unexplained losses
fail; a reply lost in the documented at-most-once window (marked sent, the retry reconciled it) is
allowed and counted."""

from __future__ import annotations

from typing import Any

from tests.chaos.checks import _smtp, smtp_window_losses
from tests.chaos.observed import Effect, Observed


def _seen(sends: list[tuple[str, bool]], received: list[str]) -> Observed:
    effects = [
        Effect(f"t{i}", "send_reply", "succeeded", f"k{i}", {"message_id": m, "reconciled": r}, 2 if r else 1)
        for i, (m, r) in enumerate(sends)
    ]
    empty: dict[Any, Any] = {}
    return Observed(
        emails=[],
        effects=effects,
        crm_notes=[],
        crm_contacts=empty,
        crm_associations=[],
        crm_keys=empty,
        outbound=[(i, m, "sent") for i, (m, _) in enumerate(sends)],
        sink_ids=received,
        sent_folder_ids=list(received),
        audit_effects=[],
        audit_broken_at=None,
        jobs=[],
        model_calls=[],
        bodies={},
        first_checkpoint={},
    )


def test_every_reply_received_once_keeps_the_promise() -> None:
    seen = _seen([("<a>", False), ("<b>", True)], ["<a>", "<b>"])
    assert _smtp(seen) == [] and smtp_window_losses(seen) == []


def test_a_reconciled_reply_that_never_arrived_is_the_documented_window() -> None:
    seen = _seen([("<a>", False), ("<b>", True)], ["<a>"])
    assert _smtp(seen) == []
    assert smtp_window_losses(seen) == ["<b>"]


def test_a_lost_reply_that_was_not_reconciled_breaks_the_promise() -> None:
    problems = _smtp(_seen([("<a>", False), ("<b>", False)], ["<a>"]))
    assert len(problems) == 1 and "missing ['<b>']" in problems[0]


def test_a_duplicate_breaks_the_promise_even_when_reconciled() -> None:
    problems = _smtp(_seen([("<a>", True)], ["<a>", "<a>"]))
    assert problems and "duplicated: {'<a>': 2}" in problems[0]
