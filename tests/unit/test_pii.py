from __future__ import annotations

from agent.inputs import GuardedEmail, Verdict
from gateway.pii import Redactor, redact_email, restore
from tools.actions import CrmUpsertContact, DraftReply
from tools.pii_boundary import redact_known, restore_model


def test_each_kind_is_replaced_and_restored_exactly() -> None:
    text = (
        "Ann Berg here (ann.berg@x.example). Call +49 170 1234567 or (555) 123-4567. "
        "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, 12 Maple Street. Regards, Ann"
    )
    r = Redactor(["Ann Berg"])
    out = r.text(text)
    for secret in ("Ann", "Berg", "ann.berg@x.example", "1234567", "4111", "DE89", "Maple"):
        assert secret not in out
    assert restore(out, r.map.entries) == text


def test_order_ids_amounts_dates_and_invalid_numbers_are_kept() -> None:
    text = "Order NW-48213 of 2026-11-02: 1,249.00 EUR. Card 1234 5678 9012 3456 is not Luhn-valid."
    assert Redactor().text(text) == text


def test_same_value_same_placeholder_and_emails_stay_valid_addresses() -> None:
    r = Redactor()
    a, b = r.text("a@x.example"), r.text("write to A@X.example")
    assert a == "pii-email-1@redacted.example" and b.endswith(a)
    DraftReply(to=a, subject="s", body="b")  # a typed recipient still validates


def test_redacted_email_and_tool_boundary_round_trip() -> None:
    email = GuardedEmail(
        email_id=1,
        message_id="<m@x.example>",
        subject="Refund for Ann Berg",
        sender_address="ann@x.example",
        sender_name="Ann Berg",
        text="Hi, Ann Berg, phone +44 20 7946 0958",
        verdict=Verdict(decision="pass"),
    )
    seen, entries = redact_email(email)
    assert "Ann" not in seen.model_dump_json() and "ann@x.example" not in seen.model_dump_json()
    assert seen.message_id == email.message_id  # ids are not personal data and must stay usable
    contact = CrmUpsertContact(email=seen.sender_address, firstname=seen.sender_name)  # type: ignore[arg-type]
    real = restore_model(contact, entries)
    assert (str(real.email), real.firstname, real.lastname) == ("ann@x.example", "Ann", "Berg")
    edited = {"to": "ann@x.example", "body": "Dear Ann Berg, ..."}
    expected = {"to": seen.sender_address, "body": f"Dear {seen.sender_name}, ..."}
    assert redact_known(edited, entries) == expected
