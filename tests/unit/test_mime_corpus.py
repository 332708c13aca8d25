"""Hand-written MIME corpus (tests/data/mime): one file per case, with what the parse must give."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.mime import ParsedEmail, parse_message
from gateway.mime_tree import MAX_PARTS

CORPUS = Path(__file__).resolve().parents[1] / "data" / "mime"
LIMIT = 10 * 1024 * 1024
# The decoded content of the corpus attachments.
PDF = b"%PDF-1.4\n% mailspine corpus attachment\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR corpus image"


@dataclass(frozen=True)
class Case:
    sender: str = "ann@customer.example"
    subject: str | None = None
    text: tuple[str, ...] = ()  # substrings of the new text
    not_text: tuple[str, ...] = ()
    quoted: tuple[str, ...] = ()
    signature: tuple[str, ...] = ()
    # filename, content type, decoded content (None: not checked)
    attachments: tuple[tuple[str | None, str, bytes | None], ...] = ()
    defects: tuple[str, ...] = ()  # each must be a substring of one defect
    forwarded: bool = False


CASES: dict[str, Case] = {
    "charset-missing-utf8.eml": Case(
        text=("Grüße aus Köln",), defects=("no charset declared for 8-bit text/plain part: decoded as utf-8",)
    ),
    "charset-missing-cp1252.eml": Case(
        text=("49,90 € for NW-10002 – the “Stormline” jacket",), defects=("decoded as cp1252",)
    ),
    "charset-unknown.eml": Case(
        text=("Grüße, Zoë",), defects=("unknown charset 'x-foo' in text/plain part: decoded as utf-8",)
    ),
    "charset-wrong-label.eml": Case(
        text=("rien reçu pour NW-10004. Où est",),
        defects=(
            "bytes invalid for declared charset 'us-ascii' in text/plain part: decoded as utf-8 (repaired)",
        ),
    ),
    "charset-windows-alias.eml": Case(text=("costs 120 € and arrived torn – order NW-10005",)),
    "header-rfc2047-mixed.eml": Case(
        sender="juergen.mueller@bergpost.example", subject="Café € NW-10006Grü", text=("Rückruf",)
    ),
    "header-rfc2047-malformed.eml": Case(
        sender="broken@mangled.example",
        subject="hélloHello =?utf-8?q?unterminated",
        text=("NW-10007",),
        defects=(
            "unknown charset 'x-bogus' in 'Subject' header",
            "invalid base64 in an encoded-word in 'Subject' header",
            "malformed encoded-word in 'Subject' header: left as is",
            "unparseable 'Date' header",
        ),
    ),
    "header-8bit.eml": Case(
        sender="jose@correo.example",
        subject="Rückerstattung für NW-10008",
        defects=("raw 8-bit bytes in 'From' header are not utf-8: decoded as cp1252",),
    ),
    "rfc2231-filenames.eml": Case(
        text=("documents for NW-10009",),
        attachments=(
            ("Rechnung März.pdf", "application/pdf", PDF),
            ("Lieferschein über.pdf", "application/pdf", PDF),
            ("Schäden.png", "image/png", PNG),
        ),
    ),
    "boundary-missing-param.eml": Case(
        text=("damaged tent NW-10010",),
        not_text=("Preamble", "JVBER"),
        attachments=(("damage.pdf", "application/pdf", PDF),),
        defects=("multipart without a boundary parameter: split on 'zz-missing' found in the body",),
    ),
    "boundary-wrong.eml": Case(
        text=("damaged tent NW-10010",),
        attachments=(("damage.pdf", "application/pdf", PDF),),
        defects=("multipart boundary 'declared-one' not found: split on 'actually-used'",),
    ),
    "boundary-unterminated.eml": Case(
        text=("damaged tent NW-10010",),
        attachments=(("damage.pdf", "application/pdf", PDF),),
        defects=("multipart boundary never closed",),
    ),
    "boundary-none-in-body.eml": Case(
        text=("invoice for NW-10011 follows",),
        not_text=("JVBER",),
        defects=(
            "multipart boundary 'gone' not found: body read as plain text",
            "base64 lines removed from the text",
        ),
    ),
    "nested-mixed-alt-related.eml": Case(
        text=("Plain version: where is NW-10012?",),
        not_text=("HTML version", "hidden note"),
        attachments=((None, "image/png", PNG), ("receipt.pdf", "application/pdf", PDF)),
    ),
    "forward-attached-rfc822.eml": Case(
        sender="manager@northwind.example",
        text=("FYI, please handle the message below.",),
        not_text=("leaks gas",),
        quoted=(
            "From: Angry Customer <angry@customer.example>",
            "Subject: Broken stove NW-10013",
            "leaks gas",
        ),
        attachments=(("original.eml", "message/rfc822", None), ("leak.png", "image/png", PNG)),
        forwarded=True,
    ),
    "base64-garbage.eml": Case(
        text=("Please check order NW-10014 again.",), defects=("base64 in text/plain part contains invalid",)
    ),
    "qp-bad-escapes.eml": Case(
        text=("The price =ZZ was wrong", "discount über 10% is missing"),
        defects=("quoted-printable in text/plain part has invalid '=' escapes: kept as-is",),
    ),
    "cte-unknown.eml": Case(
        text=("Order NW-10016 is late.",),
        attachments=(("late.pdf", "application/pdf", PDF),),
        defects=(
            "unknown content-transfer-encoding 'x-custom' in text/plain part: read as 8bit",
            "unknown content-transfer-encoding 'basd64' in attachment late.pdf: it looked like base64",
        ),
    ),
    "nul-and-controls.eml": Case(
        text=("Order NW-10017", "is late."), not_text=("\x00", "\x1b", "\x07", "\r")
    ),
    "deep-nesting.eml": Case(
        not_text=("Too deep",), defects=("MIME nesting deeper than 20 levels: inner parts ignored",)
    ),
    "forward-inline-gmail.eml": Case(
        text=("Can you look at this one?",),
        not_text=("cancel my order",),
        quoted=("---------- Forwarded message", "Please cancel my order NW-10018."),
        forwarded=True,
    ),
    "forward-apple-de.eml": Case(
        text=("Bitte kümmert euch darum.",),
        not_text=("Rucksack",),
        quoted=("Anfang der weitergeleiteten Nachricht:", "Der Rucksack ist gerissen."),
        forwarded=True,
    ),
    "reply-outlook-de.eml": Case(
        text=("warte ich noch bis Freitag",),
        not_text=("____", "Von:", "Lieferung kommt"),
        quoted=("Gesendet: Montag", "Ihre Lieferung kommt bald."),
    ),
    "reply-original-message.eml": Case(
        text=("still wrong",), not_text=("corrected",), quoted=("-----Original Message-----", "corrected")
    ),
    "reply-fr-wrapped.eml": Case(
        text=("Toujours rien reçu.",), not_text=("écrit", "partie"), quoted=("a\nécrit :", "est partie")
    ),
    "reply-es-quoted.eml": Case(text=("sigue sin llegar",), not_text=("escribió",), quoted=("en camino",)),
    "reply-bare-quotes.eml": Case(
        text=("Size 44 please", "Black."), not_text=("Which size",), quoted=("> Which size", "> And which")
    ),
    "signature-dashes.eml": Case(
        text=("when will NW-10025 ship?", "Cheers,\nAnn"),
        not_text=("7946", "Baker Street"),
        signature=("Phone +44 20 7946 0958", "221B Baker Street"),
    ),
    "signature-closing.eml": Case(
        text=("wo bleibt meine Bestellung NW-10026?", "Mit freundlichen Grüßen"),
        not_text=("80331", "089 555", "iPhone"),
        signature=("Katrin Weber", "Tel. 089 555 0199", "Von meinem iPhone gesendet"),
    ),
    "signature-not-a-closing.eml": Case(text=("Thanks,\nalso could you check my other order NW-10028",)),
    "html-only.eml": Case(
        text=("Where is my order NW-10029?",),
        not_text=("Ignore previous", "color:red", "hidden comment", "<p>", "has shipped"),
        quoted=("wrote:", "Your order has shipped."),
        signature=("Ann", "+44 20 7946 0000"),
    ),
    "calendar-inline.eml": Case(
        text=("You are invited to a fitting appointment.",),
        not_text=("BEGIN:", "VEVENT", "Fitting appointment"),
    ),
    "calendar-attachment.eml": Case(
        text=("The store visit is cancelled.",),
        not_text=("BEGIN:", "Store visit", "QkVHSU4"),
        attachments=(("invite.ics", "application/octet-stream", None),),
    ),
}


def _parse(name: str) -> ParsedEmail:
    return parse_message((CORPUS / name).read_bytes(), max_bytes=LIMIT)


def test_every_corpus_file_has_expectations() -> None:
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert len(files) >= 20
    assert files == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str) -> None:
    case, parsed = CASES[name], _parse(name)
    assert parsed.sender_address == case.sender
    if case.subject is not None:
        assert parsed.subject == case.subject
    for wanted in case.text:
        assert wanted in parsed.text
    for unwanted in case.not_text:
        assert unwanted not in parsed.text
    for wanted in case.quoted:
        assert wanted in parsed.quoted_text
    for wanted in case.signature:
        assert wanted in parsed.signature
    if not case.signature:
        assert parsed.signature == "" or name == "html-only.eml"
    assert parsed.forwarded == case.forwarded
    got = [(a.filename, a.content_type) for a in parsed.attachments]
    assert got == [(n, t) for n, t, _ in case.attachments]
    for attachment, (_, _, content) in zip(parsed.attachments, case.attachments, strict=True):
        if content is not None:
            assert attachment.size_bytes == len(content)
            assert attachment.sha256 == hashlib.sha256(content).hexdigest()
        assert attachment.size_bytes > 0
    for wanted in case.defects:
        assert any(wanted in d for d in parsed.defects), (wanted, parsed.defects)
    if not case.defects:
        assert parsed.defects == []


def test_encoded_names_and_addresses_are_decoded_after_splitting() -> None:
    parsed = _parse("header-rfc2047-mixed.eml")
    assert parsed.sender_name == "Müller, Jürgen"  # an encoded comma does not split the address
    assert parsed.to == ["support@northwind.example", "rene@x.example"]
    assert parsed.sent_at == datetime.fromisoformat("2025-03-18T09:00:00+01:00")
    assert _parse("header-8bit.eml").sender_name == "José Núñez"


def test_inline_calendar_invite_is_parsed_and_valarm_ignored() -> None:
    (invite,) = _parse("calendar-inline.eml").calendar
    assert invite.method == "REQUEST"
    assert invite.summary == "Fitting appointment for order NW-10030, store Leeds"
    assert invite.start == datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
    assert invite.end == datetime(2025, 3, 20, 10, 30, tzinfo=UTC)
    assert invite.organizer == "ann@customer.example"
    assert invite.location == "Leeds\nBriggate 1"


def test_ics_attachment_is_described_and_parsed() -> None:
    parsed = _parse("calendar-attachment.eml")
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("invite.ics", "application/octet-stream")
    ]
    visit, broken = parsed.calendar
    assert (visit.method, visit.summary, visit.organizer) == (
        "CANCEL",
        "Store visit",
        "store@northwind.example",
    )
    assert visit.start is not None and visit.start.hour == 15 and str(visit.start.tzinfo) == "Europe/Berlin"
    assert visit.end == datetime(2025, 4, 2)  # a DATE value: midnight, no zone
    assert (broken.summary, broken.start, broken.end, broken.organizer) == ("Broken", None, None, None)


def test_html_alternative_still_feeds_the_hidden_text_scanner() -> None:
    parsed = _parse("nested-mixed-alt-related.eml")
    assert "hidden note in html" in parsed.hidden_text


def test_too_many_parts_are_capped_with_a_defect() -> None:
    parts = "".join(
        f"--p\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\r\n{i}\r\n" for i in range(600)
    )
    raw = (
        'From: a@x.example\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n'
        f"--p\r\nContent-Type: text/plain\r\n\r\nhello\r\n{parts}--p--\r\n"
    ).encode()
    parsed = parse_message(raw, max_bytes=LIMIT)
    assert parsed.text == "hello"
    assert len(parsed.attachments) == MAX_PARTS - 2  # the root and the text part count too
    assert f"more than {MAX_PARTS} MIME parts: the rest ignored" in parsed.defects


def test_mbox_envelope_line_and_bare_lf_are_accepted() -> None:
    raw = (
        b"From ann@customer.example Mon Mar 17 10:00:00 2025\nFrom: ann@customer.example\nSubject: x\n\nhi\n"
    )
    parsed = parse_message(raw, max_bytes=LIMIT)
    assert (parsed.sender_address, parsed.subject, parsed.text) == ("ann@customer.example", "x", "hi")
