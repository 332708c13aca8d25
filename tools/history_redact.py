"""Text that enters the history: placeholders only, and none that the tool boundary would restore.

Two sources of text reach the planner through the history:

- earlier emails' ``text_body``: redacted already, but with *that* email's placeholders. The act
  node restores placeholders from the *current* email's vault, so ``[PERSON_1]`` of an old email
  would turn into whoever is ``[PERSON_1]`` now. ``neutralise`` makes them plain kinds
  (``[PERSON]``, ``[EMAIL]``), which nothing restores;
- CRM records (notes, tickets, deals): written with real values. ``CrmRedactor`` gives the
  current email's known values (from its vault) and the CRM contact's own name the current
  email's placeholders, and anything else the gateway's patterns find (addresses, phones, cards,
  IBANs, street addresses) a plain kind. Names the CRM text mentions that are neither the
  contact's nor in the vault cannot be recognised without a NER model; ``docs/tools.md`` says so.
"""

from __future__ import annotations

import re

from gateway.pii import PiiMap, Redactor

_NUMBERED = re.compile(r"\[(PHONE|CARD|IBAN|ADDRESS|PERSON)_\d+(?:_(?:FIRST|LAST))?\]")
_EMAIL_TOKEN = re.compile(r"pii-email-\d+@redacted\.example")
_SPACE = re.compile(r"\s+")


def neutralise(text: str) -> str:
    """Numbered placeholders of another email become plain kinds: ``[PERSON_2_LAST]`` → ``[PERSON]``."""
    return _EMAIL_TOKEN.sub("[EMAIL]", _NUMBERED.sub(lambda m: f"[{m.group(1)}]", text))


def excerpt(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace collapsed, an ellipsis when cut)."""
    flat = _SPACE.sub(" ", text).strip()
    if limit <= 0 or not flat:
        return ""
    return flat if len(flat) <= limit else flat[: max(limit - 1, 0)].rstrip() + "…"


class CrmRedactor:
    """Redacts CRM text for the current email's planner (see the module docstring)."""

    def __init__(self, entries: dict[str, tuple[str, str]], *, people: list[str]) -> None:
        self._known = set(entries)
        self._redactor = Redactor()
        self._redactor.map = PiiMap.from_entries(entries)
        vault_people = [value for kind, value in entries.values() if kind == "PERSON"]
        for name in [*vault_people, *people]:
            self._redactor.person(name)

    def text(self, text: str) -> str:
        redacted = self._redactor.text(text)
        # Placeholders the vault does not know were minted here: make them plain kinds.
        return _EMAIL_TOKEN.sub(
            lambda m: m.group(0) if m.group(0) in self._known else "[EMAIL]",
            _NUMBERED.sub(lambda m: m.group(0) if m.group(0) in self._known else f"[{m.group(1)}]", redacted),
        )
