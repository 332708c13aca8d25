"""Online evaluation's rule checks, signals, sampling and alarm transitions (pure, no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.inputs import GuardedEmail, Verdict
from agent.schemas import Extraction, Intent
from app.settings_online import DEFAULT_SAMPLE_RATE, OnlineSettings
from evals.online import alarm_action, sampled
from evals.online_checks import (
    check_foreign_data,
    check_policy,
    check_reply_language,
    check_schema,
    crm_signal,
    edit_similarity,
    language_of,
    review_signal,
)
from tools.actions import CrmAddNote, CrmUpsertContact, DraftReply, Plan

SENDER = "pii-email-1@redacted.example"
PATTERN = OnlineSettings().order_id_pattern
EMAIL_TEXT = "Hello, where is my order NW-48213? I ordered the tent two weeks ago. Thanks, [PERSON_1]"


def _foreign(reply: str, **overrides: object) -> dict[str, object]:
    args: dict[str, object] = {
        "thread_texts": [EMAIL_TEXT],
        "allowed_addresses": {SENDER},
        "placeholders": {SENDER, "[PERSON_1]"},
        "order_ids": ["NW-48213"],
        "order_id_pattern": PATTERN,
    } | overrides
    score = check_foreign_data([reply], **args)  # type: ignore[arg-type]
    return {"value": score.value, **score.details}


def test_a_reply_with_only_the_senders_data_passes() -> None:
    got = _foreign(f"Hello [PERSON_1], your order NW-48213 ships today. We write to {SENDER}.")
    assert got["value"] == 1.0


def test_a_reply_leaking_another_customers_address_fails_without_storing_it() -> None:
    got = _foreign("Hello [PERSON_1], your neighbour bob.smith@example.org ordered the same tent.")
    assert got["value"] == 0.0
    assert got["foreign_addresses"] == 1
    assert "bob.smith" not in repr(got)  # details count addresses, never copy them


def test_a_placeholder_of_another_email_and_an_unknown_order_id_fail() -> None:
    got = _foreign("Hello [PERSON_2], order NW-99999 is on its way.")
    assert got["value"] == 0.0
    assert got["foreign_placeholders"] == ["[person_2]"]
    assert got["foreign_order_ids"] == ["NW-99999"]


def test_an_order_id_written_earlier_in_the_thread_is_allowed() -> None:
    got = _foreign("Your order NW-77777 ships today.", thread_texts=[EMAIL_TEXT, "Re: NW-77777 delayed"])
    assert got["value"] == 1.0


def test_no_reply_is_skipped_not_passed() -> None:
    score = check_foreign_data(
        [],
        thread_texts=[],
        allowed_addresses=set(),
        placeholders=set(),
        order_ids=[],
        order_id_pattern=PATTERN,
    )
    assert score.value is None and "skipped" in score.details


def test_language_mismatch_fails_and_a_match_passes() -> None:
    german = "Hallo, ich habe meine Bestellung noch nicht bekommen. Bitte helfen Sie mir, danke."
    english_reply = "Hello, thank you for your message. We are checking the shipment and will write to you."
    german_reply = (
        "Hallo, danke für Ihre Nachricht. Wir haben die Bestellung geprüft und melden uns bei Ihnen."
    )
    assert language_of(german)[0] == "de"
    mismatch = check_reply_language([english_reply], german)
    assert mismatch.value == 0.0 and mismatch.details == {"email": "de", "replies": ["en"]}
    assert check_reply_language([german_reply], german).value == 1.0


def test_language_not_detectable_is_skipped() -> None:
    score = check_reply_language(["Hello, thank you for your message about the order."], "NW-1 ??")
    assert score.value is None


def test_schema_check_fails_on_an_invalid_stored_plan_and_on_an_invalid_model_answer() -> None:
    extraction = Extraction(intent=Intent.ORDER_STATUS, summary="s", confidence=0.9).model_dump(mode="json")
    good_plan = Plan(actions=[], rationale="r").model_dump(mode="json")
    assert check_schema(extraction, good_plan, []).value == 1.0
    bad_plan = {"actions": [{"kind": "wire_money", "amount": 5}], "rationale": "r"}
    assert check_schema(extraction, bad_plan, []).value == 0.0
    assert check_schema(None, None, ["extraction invalid: 1 validation error"]).value == 0.0
    assert check_schema(None, None, []).value is None


def _email(text: str = "Where is my order NW-48213?") -> GuardedEmail:
    return GuardedEmail(
        email_id=7,
        message_id="<7@x>",
        subject="Order",
        sender_address=SENDER,
        sender_name="[PERSON_1]",
        text=text,
        verdict=Verdict(decision="pass"),
    )


def test_policy_consistency_compares_the_route_taken_with_the_policy() -> None:
    extraction = Extraction(intent=Intent.ORDER_STATUS, summary="s", confidence=0.9, order_ids=["NW-48213"])
    plan = Plan(
        actions=[
            CrmUpsertContact(email=SENDER),
            CrmAddNote(contact_email=SENDER, body="[order_status] asks about NW-48213"),
            DraftReply(to=SENDER, subject="Re: Order", body="Hello, we are checking NW-48213."),
        ],
        rationale="r",
    )
    common = {
        "email": _email(),
        "extraction": extraction,
        "plan": plan,
        "unsure": [],
        "refund_threshold": Decimal(100),
        "min_confidence": 0.6,
    }
    assert check_policy(route_taken="auto", **common).value == 1.0  # type: ignore[arg-type]
    wrong = check_policy(route_taken="ignore", **common)  # type: ignore[arg-type]
    assert wrong.value == 0.0 and wrong.details["policy_route"] == "auto"
    assert check_policy(route_taken=None, **common).value is None  # type: ignore[arg-type]


def test_review_signals_approved_edited_rejected() -> None:
    proposed = {
        "actions": [{"kind": "draft_reply", "to": SENDER, "subject": "Re: a", "body": "one two three four"}]
    }
    edited = {
        "actions": [{"kind": "draft_reply", "to": SENDER, "subject": "Re: a", "body": "one two 3 four"}]
    }
    assert review_signal("approved", proposed, proposed).value == 1.0
    assert review_signal("approved", proposed, None).value == 1.0
    assert review_signal("rejected", proposed, None).value == 0.0
    signal = review_signal("approved", proposed, edited)
    # "Re: a one two three four" vs "Re: a one two 3 four": 1 substitution in 6 words.
    assert signal.value == round(1 - 1 / 6, 4) and signal.details["decision"] == "edited"
    with pytest.raises(ValueError, match="not a decision"):
        review_signal("pending", proposed, None)


def test_edit_similarity_is_normalised_word_edit_distance() -> None:
    assert edit_similarity("a b c d", "a b c d") == 1.0
    assert edit_similarity("a b c d", "") == 0.0
    assert edit_similarity("a b c d", "a c d e") == 0.5  # delete b, insert e
    assert edit_similarity("", "") == 1.0


def test_crm_signal_counts_only_rejections_by_the_crm() -> None:
    assert crm_signal([]) is None
    ok = crm_signal([("succeeded", None), ("succeeded", None)])
    assert ok is not None and ok.value == 1.0
    rejected = crm_signal(
        [("succeeded", None), ("failed", "CRM rejected POST /crm/v3/objects/notes (400): bad")]
    )
    assert rejected is not None and rejected.value == 0.0 and rejected.details["rejected"] == 1
    assert crm_signal([("failed", "CRM unreachable at http://crm: ConnectError")]) is None


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    threads = [f"email-{i}" for i in range(4000)]
    first = [sampled(t, 0.2) for t in threads]
    assert first == [sampled(t, 0.2) for t in threads]  # same answer every time, in any process
    assert 0.17 < sum(first) / len(threads) < 0.23
    assert not any(sampled(t, 0.0) for t in threads) and all(sampled(t, 1.0) for t in threads)
    # A larger rate keeps every thread a smaller one sampled; the shadow salt picks another set.
    assert all(sampled(t, 0.5) for t, s in zip(threads, first, strict=True) if s)
    assert [sampled(t, 0.2, salt="shadow") for t in threads] != first


def test_alarm_raises_below_threshold_and_clears_above() -> None:
    kw = {"threshold": 0.8, "min_scores": 3}
    assert alarm_action(0.5, 2, is_open=False, **kw) is None  # too few scores yet
    assert alarm_action(0.5, 3, is_open=False, **kw) == "raise"
    assert alarm_action(0.5, 3, is_open=True, **kw) is None  # already open
    assert alarm_action(0.8, 3, is_open=True, **kw) == "clear"
    assert alarm_action(0.9, 3, is_open=False, **kw) is None
    assert alarm_action(None, 0, is_open=True, **kw) is None


def test_settings_rate_thresholds_and_candidate() -> None:
    assert OnlineSettings().rate("dev") == DEFAULT_SAMPLE_RATE and OnlineSettings().rate("test") == 0.0
    assert OnlineSettings(sample_rate=0.5).rate("test") == 0.5
    merged = OnlineSettings(thresholds={"judge": 0.4})
    assert merged.threshold("judge") == 0.4 and merged.threshold("schema_valid") == 0.99
    assert OnlineSettings().threshold("no_such_score") is None
    assert OnlineSettings(shadow_candidate="plan@staging").shadow_candidate == "plan@staging"
    for bad in ({"shadow_candidate": "plan"}, {"thresholds": {"judge": 1.5}}, {"order_id_pattern": "("}):
        with pytest.raises(ValueError):
            OnlineSettings(**bad)  # type: ignore[arg-type]
