"""Separate the sender's signature from the new text, conservatively.

Three cases, tried in order, and only near the end of the text:
1. a signature delimiter line ("-- ", also "--" as clients strip the space) in the last 25 lines;
2. a mobile footer ("Sent from my iPhone", de/fr/es) as the last line;
3. a closing line ("Best regards,", "Mit freundlichen Grüßen", "Cordialement", "Saludos", ...)
   followed by at most 10 short lines that each look like a name, title, company, address or phone
   (digits, "@", a URL, or a few mostly capitalised words). One sentence-like line keeps it all.
The closing itself stays in the text; what follows goes to the signature. Phone numbers, postcodes
and customer numbers in a signature are then not mistaken for content.
"""

from __future__ import annotations

import re

_MOBILE = re.compile(
    r"^(?:sent from my \w+|get outlook for \w+|von meinem \w+ gesendet|envoyé de mon \w+|"
    r"enviado desde mi \w+)",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|warmest|many|with kind|with best)?\s*regards|best(?: wishes)?|all the best|"
    r"thanks(?: again| a lot| in advance| and regards)?|thank you(?: very much| in advance)?|many thanks|"
    r"cheers|sincerely(?: yours)?|yours(?: sincerely| truly| faithfully)?|"
    r"mit freundlichen gr(?:ü|ue|u)(?:ß|ss)en|"
    r"(?:(?:freundliche|viele|beste|liebe|herzliche)\s+)?gr(?:ü|ue)(?:ß|ss)e|mfg|"
    r"(?:bien\s+)?cordialement|bien à vous|(?:meilleures\s+)?salutations|"
    r"merci(?: d'avance| beaucoup)?|(?:un\s+)?saludos?(?: cordiales)?|cordiales saludos|atentamente|"
    r"(?:muchas\s+)?gracias)[ \t]*[,.!]?$",
    re.IGNORECASE,
)
_CONTACT = re.compile(r"\d|@|https?://|www\.", re.IGNORECASE)
_MAX_TAIL = 25
_MAX_BLOCK = 10


def _signature_like(line: str) -> bool:
    line = line.strip()
    if len(line) > 80 or line.endswith(("?", "!")):
        return False
    if _CONTACT.search(line):
        return True
    words = [w for w in line.split() if w[:1].isalpha()]
    capitalised = sum(1 for w in words if w[:1].isupper())
    return 0 < len(words) <= 6 and capitalised >= 0.6 * len(words) and not line.endswith(".")


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def _tail(lines: list[str]) -> list[int]:
    """Indexes of the non-empty lines among the last ``_MAX_TAIL``, last first."""
    return [i for i in range(len(lines) - 1, max(-1, len(lines) - 1 - _MAX_TAIL), -1) if lines[i].strip()]


def split_signature(text: str) -> tuple[str, str]:
    """(text without the signature, signature); the signature is "" when none is recognised."""
    lines = text.split("\n")
    for i in _tail(lines):
        if lines[i].rstrip() == "--" and _has_text(lines[:i]):  # "-- " (RFC 3676), or with the space lost
            return "\n".join(lines[:i]).rstrip(), "\n".join(lines[i + 1 :]).strip()
    footer = ""
    content = _tail(lines)
    if content and _MOBILE.match(lines[content[0]].strip()) and _has_text(lines[: content[0]]):
        footer, lines = lines[content[0]].strip(), lines[: content[0]]
        content = _tail(lines)
    for i in content[1 : _MAX_BLOCK + 1]:
        if _CLOSING.match(lines[i].strip()):
            block = [line for line in lines[i + 1 :] if line.strip()]
            if _has_text(lines[:i]) and all(_signature_like(line) for line in block):
                signature = "\n".join(lines[i + 1 :]).strip()
                return "\n".join(lines[: i + 1]).rstrip(), f"{signature}\n{footer}".strip()
            break  # only the last closing counts
    return ("\n".join(lines).rstrip(), footer) if footer else (text, "")
