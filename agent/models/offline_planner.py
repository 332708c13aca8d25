"""The offline model's planning rules: an ``Extraction`` in, a ``Plan`` (as JSON) out.

Deterministic stand-in for a strong model, so that demos, tests and evals exercise the real
planning path (structured output, risk policy, review, ledger) without a network.
"""

from __future__ import annotations

from typing import Any

from agent.schemas import Extraction, Intent

_GREETING = {"en": "Hello {name},", "de": "Hallo {name},", "fr": "Bonjour {name},", "es": "Hola {name}:"}
_SIGN_OFF = {
    "en": "Kind regards,\nNorthwind Outfitters support",
    "de": "Freundliche Grüße,\nIhr Northwind-Outfitters-Support",
    "fr": "Cordialement,\nLe support Northwind Outfitters",
    "es": "Saludos cordiales,\nSoporte de Northwind Outfitters",
}
_BODY = {
    Intent.ORDER_STATUS: "thank you for your message about {orders}. We are checking the shipment and will "
    "send you the tracking details shortly.",
    Intent.REFUND_REQUEST: "thank you for your refund request for {orders}. A colleague is "
    "reviewing it and you will hear from us within two business days.",
    Intent.CANCELLATION: "we have received your cancellation request for {orders}. We will confirm it once "
    "it has been processed.",
    Intent.COMPLAINT: "we are sorry about your experience with {orders}. A member of our team is looking "
    "into it personally and will get back to you.",
    Intent.SALES_INQUIRY: "thank you for your interest. Our sales team will send you a tailored quote.",
    Intent.SUPPORT_QUESTION: "thank you for your question. We will get back to you with an answer shortly.",
    Intent.OTHER: "thank you for your message. We will get back to you shortly.",
}
_NO_REPLY = {Intent.NEWSLETTER, Intent.SPAM, Intent.INVOICE}


def _name_parts(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    first, _, last = name.strip().partition(" ")
    return first or None, last or None


def plan(extraction: Extraction, *, sender: str | None, subject: str) -> dict[str, Any]:
    if extraction.intent in (Intent.NEWSLETTER, Intent.SPAM) or not sender:
        return {"actions": [], "rationale": f"No follow-up for {extraction.intent.value} mail."}
    first, last = _name_parts(extraction.sender_name)
    note = f"[{extraction.intent.value}] {extraction.summary}"
    if extraction.order_ids:
        note += f" Orders: {', '.join(extraction.order_ids)}."
    if extraction.amounts:
        note += " Amounts: " + ", ".join(f"{m.value} {m.currency}" for m in extraction.amounts) + "."
    actions: list[dict[str, Any]] = [
        {
            "kind": "crm_upsert_contact",
            "email": sender,
            "firstname": first,
            "lastname": last,
            "company": extraction.company,
        },
        {"kind": "crm_add_note", "contact_email": sender, "body": note[:4000]},
    ]
    if extraction.intent not in _NO_REPLY:
        lang = extraction.language if extraction.language in _GREETING else "en"
        orders = ", ".join(extraction.order_ids) or "your order"
        body = _BODY.get(extraction.intent, _BODY[Intent.OTHER]).format(orders=orders)
        greeting = _GREETING[lang].format(name=first or "there")
        reply_subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        actions.append(
            {
                "kind": "draft_reply",
                "to": sender,
                "subject": reply_subject[:300],
                "body": f"{greeting}\n\n{body[0].upper()}{body[1:]}\n\n{_SIGN_OFF[lang]}",
            }
        )
    return {"actions": actions, "rationale": f"Standard follow-up for {extraction.intent.value}."}
