"""The MIME helpers one by one: charsets, encoded-words, history and signature splits, ICS, HTML."""

from __future__ import annotations

import pytest

from gateway.html_text import html_to_text
from gateway.ics import parse_ics
from gateway.mime_headers import decode_words
from gateway.mime_payload import decode_base64_lenient
from gateway.mime_text import decode_text, resolve_charset
from gateway.quoting import split_history
from gateway.signature import split_signature


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8-sig"),
        ('"utf8"', "utf-8-sig"),
        ("latin1", "cp1252"),
        ("windows1252", "cp1252"),
        ("x-mac-roman", "mac_roman"),
        ("ks_c_5601-1987", "euc_kr"),
        ("x-unknown", None),
        ("base64", None),  # a Python codec, but not a charset
        ("undefined", None),
        ("unicode_escape", None),
        ("x-\x00", None),
        ("a" * 300, None),
    ],
)
def test_charset_labels_resolve_to_safe_codecs(label: str, codec: str | None) -> None:
    assert resolve_charset(label) == codec


def test_decode_text_guesses_and_records() -> None:
    defects: list[str] = []
    assert decode_text("Grüße".encode(), None, defects) == "Grüße"
    assert decode_text("Grüße".encode("cp1252"), "utf-8", defects) == "Grüße"
    assert decode_text(b"\x81\x8d", "x-foo", defects) == "\x81\x8d"  # undefined in cp1252: latin-1
    assert decode_text("\ufeffhi".encode(), "utf-8", defects) == "hi"  # a BOM is not content
    assert defects == [
        "no charset declared for 8-bit text: decoded as utf-8",
        "bytes invalid for declared charset 'utf-8' in text: decoded as cp1252 (repaired)",
        "unknown charset 'x-foo' in text: decoded as latin-1",
    ]


def test_encoded_words_join_split_characters_and_survive_garbage() -> None:
    defects: list[str] = []
    split = "=?utf-8?b?w6==?= =?utf-8?b?vA==?="  # "ü" split over two words: invalid alone
    assert decode_words("=?UTF-8?Q?a=C3?= =?utf-8?q?=BC_b?=", defects, "x") == "aü b"
    assert decode_words("=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", defects, "x") == "Grüße"  # RFC 2231 language
    assert decode_words(split, defects, "x") == "ü"
    assert decode_words("plain =?utf-8?q?open", defects, "x") == "plain =?utf-8?q?open"
    assert "malformed encoded-word in x: left as is" in defects
    assert decode_base64_lenient(b"SGVsbG8*") == (b"Hello", True)


@pytest.mark.parametrize(
    "history",
    [
        "Am 03.03.2025 um 10:02 schrieb Piotr Kowalski <p@x.example>:\n> Hallo",
        "On Mon, 3 Mar 2025 at 10:02, Piotr Kowalski <\np@x.example> wrote:\n> Hello",
        "Piotr <p@x.example> wrote:\n\n> Hello",
        "-----Ursprüngliche Nachricht-----\nVon: Support",
        "De : Support <s@x.example>\nEnvoyé : lundi 3 mars 2025 10:02\nÀ : Ann\nObjet : Commande\n\nBonjour",
    ],
)
def test_history_markers(history: str) -> None:
    split = split_history(f"New words here.\n\n{history}")
    assert (split.new, split.history) == ("New words here.", history)


def test_history_markers_are_not_found_in_ordinary_text() -> None:
    text = "Trip booking:\nFrom: Berlin\nTo: Munich\nDate: 5 May\n\nOn Monday I wrote to you already."
    assert split_history(text).new == text


def test_outlook_forward_is_recognised_by_its_subject() -> None:
    text = "FYI\n\nFrom: Bob <b@x.example>\nSent: Monday\nTo: Ann\nSubject: FW: order\n\nbody"
    assert split_history(text).forwarded


@pytest.mark.parametrize(
    "text",
    [
        "Thanks!",
        "Thanks,\nAnn",  # nothing before the closing: the closing is the message
        "Please help.\n\nBest regards,\nthe parcel was damaged and i want my money back",
        "Please help.\n\nKind regards,\nAnn\nWhere is my refund?",
    ],
)
def test_signature_is_split_conservatively(text: str) -> None:
    assert split_signature(text) == (text, "")


def test_signature_after_delimiter_and_after_closing() -> None:
    assert split_signature("Hi\n-- \nAnn\n+1 555 0100") == ("Hi", "Ann\n+1 555 0100")
    assert split_signature("Hi\n\nCordialement,\nCamille Dubois\n12 rue X, 75001 Paris") == (
        "Hi\n\nCordialement,",
        "Camille Dubois\n12 rue X, 75001 Paris",
    )
    assert split_signature("Hola\n\nEnviado desde mi iPhone") == ("Hola", "Enviado desde mi iPhone")


def test_ics_garbage_never_raises() -> None:
    for text in ("", "BEGIN:VEVENT", "END:VEVENT\nEND:VEVENT", ":::", 'ORGANIZER;CN="a:b', "BEGIN:\n" * 50):
        parse_ics(text)
    (invite,) = parse_ics("BEGIN:VEVENT\nDTSTART;TZID=../../etc/passwd:20250101T100000\nEND:VEVENT")
    assert invite.start is not None and invite.start.tzinfo is None


def test_unfinished_markup_stays_text_and_hidden_stays_hidden() -> None:
    out = html_to_text("<p>a < b, 3<4 and <a" + "<a" * 1000)
    assert out.text.startswith("a < b, 3<4 and")
    out = html_to_text("<p>shown</p><!-- open comment <p>never shown")
    assert out.text == "shown" and out.comments == ["open comment <p>never shown"]
    deep = html_to_text('<div style="display:none">' + "<div>" * 5000 + "secret" + "</span>" * 5000)
    assert deep.text == "" and deep.hidden_text == "secret"


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Messaggio inoltrato ---------",
        "---------- Doorgestuurd bericht ---------",
        "---------- Mensagem encaminhada ---------",
        "Inizio messaggio inoltrato:",
    ],
)
def test_forward_separators_in_italian_dutch_and_portuguese(marker: str) -> None:
    split = split_history(f"Please help with this.\n\n{marker}\nDa: a@b.example\n\nInner text.")
    assert split.new == "Please help with this." and split.forwarded and "Inner text." in split.history


def test_an_outlook_block_under_a_forward_subject_is_a_forward_and_under_a_reply_it_is_not() -> None:
    body = (
        "See below.\n\n________________________________\nFrom: Dev <d@x.example>\n"
        "Sent: 25 February 2026 17:40\nTo: Sam <s@x.example>\nSubject: kit list\n\nWe need tents."
    )
    assert split_history(body, subject="FW: kit list").forwarded
    assert split_history(body, subject="I: kit list").forwarded
    reply = split_history(body, subject="RE: kit list")
    assert not reply.forwarded and reply.new == "See below."


def test_text_in_its_background_colour_is_hidden_and_white_on_a_dark_button_is_not() -> None:
    button = html_to_text(
        '<table><tr><td style="background:#1a5d3a"><span style="color:#ffffff">See what is new</span>'
        "</td></tr></table>"
    )
    assert "See what is new" in button.text and not button.hidden_text
    for html in (
        '<p style="color:rgb(255, 255, 255)">white on the page</p>',
        '<div style="background-color:#1a5d3a"><p style="color:#1A5D3A">same colour</p></div>',
        '<table bgcolor="#eeeeee"><tr><td><font color="#eee">font tag</font></td></tr></table>',
    ):
        rendered = html_to_text(html)
        assert rendered.hidden_text and not rendered.text.strip(), html
