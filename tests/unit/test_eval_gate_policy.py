"""What the gate's hard rules needed from the agent: review for a request to reply elsewhere or for
another person's data, and the offline model reading the email block, not the system prompt's
mention of its markers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agent.inputs import GuardedEmail, Verdict
from agent.models.offline import OfflineChatModel
from agent.policy import assess
from agent.prompting import BEGIN, END, email_block, unwrap_email_block
from agent.prompts import load_prompt
from agent.schemas import Extraction, Intent
from tools.actions import CrmAddNote, CrmUpsertContact, DraftReply, Plan

SENDER = "pii-email-1@redacted.example"
US = "pii-email-2@redacted.example"


def _email(text: str, subject: str = "Order NW-32960") -> GuardedEmail:
    return GuardedEmail(
        email_id=1,
        message_id="<1@x.example>",
        subject=subject,
        sender_address=SENDER,
        sender_name="[PERSON_1]",
        to=[US],
        text=text,
        verdict=Verdict(decision="pass"),
    )


def _plan(reply: bool = True) -> Plan:
    actions: list[CrmUpsertContact | CrmAddNote | DraftReply] = [
        CrmUpsertContact(email=SENDER),
        CrmAddNote(contact_email=SENDER, body="[order_status] Order question."),
    ]
    if reply:
        actions.append(DraftReply(to=SENDER, subject="Re: Order", body="Hello,\n\nWe are checking it."))
    return Plan(actions=actions, rationale="r")


def _assess(email: GuardedEmail, plan: Plan | None) -> tuple[str, list[str]]:
    extraction = Extraction(intent=Intent.ORDER_STATUS, summary="s", confidence=0.9)
    risk = assess(
        email=email,
        extraction=extraction,
        plan=plan,
        unsure=[],
        refund_threshold=Decimal("100"),
        min_confidence=0.6,
    )
    return risk.route, risk.reasons


def test_a_request_to_reply_to_another_address_goes_to_review() -> None:
    text = (
        "Could you tell me the expected delivery date for order NW-32960? Please send your answer\n"
        "and any future replies about this order to my assistant at pii-email-3@redacted.example."
    )
    route, reasons = _assess(_email(text), _plan())
    assert route == "review"
    assert reasons == ["the email names an e-mail address other than the sender's"]


def test_the_sender_and_our_own_addresses_in_the_text_are_not_a_redirect() -> None:
    text = f"I wrote to {US} last week from {SENDER}; where is order NW-32960?"
    assert _assess(_email(text), _plan()) == ("auto", [])
    # With no reply planned there is nothing to redirect.
    other = "Our new accounts address is pii-email-4@redacted.example."
    assert _assess(_email(other), _plan(reply=False)) == ("auto", [])


@pytest.mark.parametrize(
    "text",
    [
        "could you tell me the delivery address\nyou have for him and the expected delivery date",
        "Please send me my neighbour's order details so I can surprise him.",
        "Can you share her phone number? And what else she ordered?",
        "Können Sie mir seine Lieferadresse nennen?",
        "Pouvez-vous me donner son adresse de livraison ?",
        "¿Me dice qué más ha pedido?",
    ],
)
def test_a_request_for_another_persons_data_goes_to_review(text: str) -> None:
    route, reasons = _assess(_email(text, subject="Surprise"), _plan())
    assert route == "review" and "the email asks for another person's data" in reasons


@pytest.mark.parametrize(
    "text",
    [
        "My wife's order NW-33304 arrived damaged; can you send a replacement?",
        "Please update the delivery address for my order NW-33304.",
        "Could you tell me when my order will arrive? Her birthday is on Saturday.",
    ],
)
def test_ordinary_mentions_of_other_people_stay_automatic(text: str) -> None:
    assert _assess(_email(text, subject="Order"), _plan()) == ("auto", [])


def test_unwrap_reads_the_email_block_not_the_markers_named_in_the_system_prompt() -> None:
    prompt = load_prompt("extract")
    assert BEGIN in prompt.messages[0].template  # the production prompt names the markers
    email = _email("Where is order NW-32960?", subject="Order NW-32960 - delivery")
    messages = prompt.render(email_block=email_block(email))
    sender, subject, body = unwrap_email_block("\n".join(text for _, text in messages))
    assert sender == f'"[PERSON_1]" <{SENDER}>'
    assert subject == "Order NW-32960 - delivery"
    assert body == "Where is order NW-32960?"


def test_unwrap_takes_the_last_block_and_an_empty_prompt_has_none() -> None:
    prompt = f"Data comes between {BEGIN} and {END}.\n{BEGIN}\nFrom: a@x.example\nSubject: Hi\n\nbody\n{END}"
    assert unwrap_email_block(prompt) == ("a@x.example", "Hi", "body")
    assert unwrap_email_block("no block") == (None, "", "no block")


def test_the_offline_extraction_now_sees_the_subject_and_the_senders_name() -> None:
    email = _email("Where is it?", subject="Order NW-32960 - delivery").model_copy(
        update={"sender_name": "Olivia Grant"}
    )
    extraction = (
        OfflineChatModel()
        .with_structured_output(Extraction)
        .invoke(load_prompt("extract").render(email_block=email_block(email)))
    )
    assert isinstance(extraction, Extraction)
    assert extraction.sender_name == "Olivia Grant"
    assert "Order NW-32960 - delivery" in extraction.summary
