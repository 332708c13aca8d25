"""PII redaction: personal data becomes placeholders before any model sees the text.

Detected: email addresses, phone numbers, payment cards (Luhn-checked), IBANs (mod-97-checked),
street addresses (common en/de/fr/es forms) and the names of the people in the headers (and their
first and last names on their own). The same value always gets the same placeholder within an
email. Email placeholders are themselves valid addresses (``pii-email-1@redacted.example``) so
typed fields (a reply's recipient) still validate; the others read ``[PHONE_1]``, ``[PERSON_1]``.
The mapping goes to the encrypted vault (``app/repo/pii_vault.py``); real values come back only at
the tool boundary (``tools/pii_boundary.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.inputs import GuardedEmail

EMAIL_DOMAIN = "redacted.example"  # a reserved domain email-validator still accepts
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w+/-])(?:\+|00)?\(?\d[\d ()./-]{6,}\d(?![\w-])")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_STREET = re.compile(
    r"\b\d{1,5}[a-z]? (?:[A-Z][\w'-]+ ){1,4}(?:Street|St\.|Avenue|Ave\.?|Road|Rd\.|Lane|Ln\.|Drive|Dr\.|"
    r"Boulevard|Blvd\.?|Way|Court|Ct\.)|"
    r"\b[A-ZÄÖÜ][\wäöüß-]+(?:straße|strasse|weg|gasse|allee|platz) \d{1,4}[a-z]?\b|"
    r"\b\d{1,4},? (?:rue|avenue|boulevard|calle|avenida|plaza) [\w' -]{2,40}?(?=[,\n]|$)",
    re.MULTILINE,
)
# Display names that are organisations, not people ("Alpine Textiles GmbH", "Northwind Newsletter").
_ORG = re.compile(
    r"\b(gmbh|ag|inc|ltd|llc|plc|sarl|s\.?a\.?|bv|co|corp|company|team|support|service|services|newsletter|news|"
    r"sales|billing|info|noreply|no-reply|shop|store|outfitters|textiles?|supply|logistics|bank|security|admin|"
    r"accounts?|accounting|desk|department|customer care|hr|it)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"\[(?:PHONE|CARD|IBAN|ADDRESS|PERSON)_\d+(?:_(?:FIRST|LAST))?\]|pii-email-\d+@redacted\.example"
)


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(value: str) -> bool:
    s = value.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


@dataclass
class PiiMap:
    """placeholder -> (kind, real value); ``add`` hands out stable placeholders per value."""

    entries: dict[str, tuple[str, str]] = field(default_factory=dict)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, kind: str, value: str, *, token: str | None = None) -> str:
        key = (kind, value.lower() if kind == "EMAIL" else value)
        if key in self._by_value:
            return self._by_value[key]
        n = sum(1 for k, _ in self._by_value if k == kind) + 1
        token = token or (f"pii-email-{n}@{EMAIL_DOMAIN}" if kind == "EMAIL" else f"[{kind}_{n}]")
        self._by_value[key] = token
        self.entries[token] = (kind, value)
        return token

    @classmethod
    def from_entries(cls, entries: dict[str, tuple[str, str]]) -> PiiMap:
        out = cls()
        for token, (kind, value) in entries.items():
            out.entries[token] = (kind, value)
            out._by_value[(kind, value.lower() if kind == "EMAIL" else value)] = token
        return out


class Redactor:
    """Redacts the free text of one email, consistently across its fields."""

    def __init__(self, people: Iterable[str] = ()) -> None:
        self.map = PiiMap()
        self._names: list[tuple[str, str]] = []  # (value, token), longest first
        for person in people:
            self._add_person(person)

    def _add_person(self, name: str) -> None:
        name = " ".join(name.replace('"', "").split())
        if len(name) < 3 or "@" in name or not any(c.isalpha() for c in name) or _ORG.search(name):
            return
        token = self.map.add("PERSON", name)
        self._names.append((name, token))
        parts = [p for p in name.split(" ") if len(p) >= 3 and p[0].isupper()]
        if len(parts) >= 2:
            base = token[1:-1]
            self._names.append((parts[0], self.map.add("PERSON", parts[0], token=f"[{base}_FIRST]")))
            self._names.append((parts[-1], self.map.add("PERSON", parts[-1], token=f"[{base}_LAST]")))
        self._names.sort(key=lambda vt: -len(vt[0]))

    def email(self, address: str | None) -> str | None:
        return self.map.add("EMAIL", address) if address else None

    def person(self, name: str | None) -> str | None:
        if not name:
            return None
        self._add_person(name)
        return self.text(name)

    def text(self, text: str) -> str:
        text = _EMAIL.sub(lambda m: self.map.add("EMAIL", m.group(0)), text)
        text = _IBAN.sub(
            lambda m: self.map.add("IBAN", m.group(0)) if _iban_ok(m.group(0)) else m.group(0), text
        )
        text = _CARD.sub(self._card, text)
        text = _STREET.sub(lambda m: self.map.add("ADDRESS", m.group(0).strip()), text)
        text = _PHONE.sub(self._phone, text)
        for value, token in self._names:
            text = re.sub(rf"(?<![\w\[]){re.escape(value)}(?![\w\]])", token, text)
        return text

    def _card(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return (
            self.map.add("CARD", match.group(0))
            if 13 <= len(digits) <= 19 and _luhn(digits)
            else match.group(0)
        )

    def _phone(self, match: re.Match[str]) -> str:
        value = match.group(0)
        digits = re.sub(r"\D", "", value)
        # Dates, order numbers (NW-48213) and amounts are not phones: demand 8+ digits and a phone shape.
        if (
            not 9 <= len(digits) <= 15
            or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
            or re.fullmatch(r"[\d.,]+", value)
        ):
            return value
        return self.map.add("PHONE", value)


def restore(text: str, entries: dict[str, tuple[str, str]]) -> str:
    """Put the real values back (tool boundary only)."""
    return _PLACEHOLDER.sub(lambda m: entries.get(m.group(0), ("", m.group(0)))[1], text)


def has_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def redact_email(email: GuardedEmail) -> tuple[GuardedEmail, dict[str, tuple[str, str]]]:
    """The email as the agent may see it, and the placeholder map for the vault."""
    r = Redactor([n for n in [email.sender_name] if n])
    redacted = email.model_copy(
        update={
            "sender_address": r.email(email.sender_address),
            "sender_name": r.person(email.sender_name),
            "to": [r.map.add("EMAIL", a) for a in email.to],
            "subject": r.text(email.subject),
            "text": r.text(email.text),
            "quoted_text": r.text(email.quoted_text),
            "signature": r.text(email.signature),
            "calendar": [
                c.model_copy(update={"organizer": r.text(c.organizer or "") or None}) for c in email.calendar
            ],
        }
    )
    return redacted, dict(r.map.entries)
