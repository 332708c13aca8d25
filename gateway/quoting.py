"""Split the new text of a message from the history below it (quoted replies, forwarded mail).

History starts at the earliest of: a reply attribution ("On ... wrote:", de/fr/es variants, also
wrapped over up to three lines, or "Name wrote:" followed by ">" lines); a separator ("-----Original
Message-----", "---------- Forwarded message ---------", "Begin forwarded message:", ...); or an
Outlook header block ("From:" followed by a Subject line and a Sent/Date/To line, in en/de/fr/es/it/
nl/pt).
Without any of these, lines starting with ">" are the history. Every search is a compiled regex
over the whole text, and candidates are capped, so a huge body costs linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The end of a reply attribution: "wrote:", "schrieb <name>:", "a écrit :", "escribió:". The start
# ("On", "Am", "Le", "El") is then looked for on that line or up to two lines above (clients wrap
# long attributions). Searching for the rare end first keeps this linear on any text.
_ATTRIBUTION_END = re.compile(
    r"(?:\bwrote|\bschrieb\b[^\n]{0,200}|\ba\s+écrit|\bescribió[^\n]{0,200})[ \t]*:[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"[ \t]*(?:On|Am|Le|El)\s", re.IGNORECASE)
_QUOTED_NEXT = re.compile(r"[ \t]*\n(?:[ \t]*\n)?[ \t]*>")
_SEPARATOR = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*(?:original message|forwarded message|weitergeleitete nachricht|"
    r"ursprüngliche nachricht|original-nachricht|message d'origine|message transféré|message original|"
    r"mensaje original|mensaje reenviado|messaggio inoltrato|messaggio originale|doorgestuurd bericht|"
    r"oorspronkelijk bericht|mensagem encaminhada|mensagem original)[ \t]*-{2,}|(?:begin forwarded message|"
    r"anfang der weitergeleiteten nachricht|début du message réexpédié|inicio del mensaje reenviado|"
    r"inizio messaggio inoltrato|begin doorgestuurd bericht|início da mensagem encaminhada)[ \t]*:)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_FORWARD_WORDS = re.compile(
    r"forward|weitergeleitet|transféré|réexpédié|reenviado|inoltrato|doorgestuurd|encaminhada", re.IGNORECASE
)
_FROM_LINE = re.compile(r"^[ \t>*]*(?:From|Von|De|Da|Van)[ \t]?:\*?[ \t]*\S", re.MULTILINE | re.IGNORECASE)
_SUBJECT_FIELD = re.compile(
    r"^[ \t>*]*(?:Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp|Assunto)[ \t]?:\*?(.*)$", re.IGNORECASE
)
_OTHER_FIELD = re.compile(
    r"^[ \t>*]*(?:Sent|Date|To|Gesendet|Datum|An|Envoyé|À|Enviado(?: el)?|Fecha|Para|Data|Inviato|A|"
    r"Verzonden|Aan|Enviada)[ \t]?:",
    re.IGNORECASE,
)
# Forward prefixes of subjects: en, de (WG), fr (TR), es (RV, REENV), it (I, Inoltra), nl (Doorst), pt (Enc).
_FORWARD_SUBJECT = re.compile(r"^\W*(?:fwd?|fw|wg|tr|rv|reenv|i|inoltra|doorst|enc)\s*:", re.IGNORECASE)
_RULE = re.compile(r"^[ \t]*_{10,}[ \t]*\n", re.MULTILINE)
_MAX_CANDIDATES = 100


@dataclass(frozen=True)
class Split:
    new: str
    history: str
    forwarded: bool  # the history is a forwarded message, not a quoted reply


def _outlook_block(text: str) -> tuple[int, bool] | None:
    """Start of an Outlook-style header block (and whether its subject says forward)."""
    for count, match in enumerate(_FROM_LINE.finditer(text)):
        if count >= _MAX_CANDIDATES:
            break
        following = text[match.end() : match.end() + 800].split("\n")[1:7]
        subjects = [m for line in following if (m := _SUBJECT_FIELD.match(line))]
        if not subjects or not any(_OTHER_FIELD.match(line) for line in following):
            continue
        forwarded = bool(_FORWARD_SUBJECT.match(subjects[0].group(1)))
        rules = list(_RULE.finditer(text, max(0, match.start() - 200), match.start()))
        rule = rules[-1] if rules else None
        if rule is not None and not text[rule.end() : match.start()].strip():
            return rule.start(), forwarded  # Outlook's "____" line above the block
        return match.start(), forwarded
    return None


def _attribution(text: str) -> int | None:
    for count, end in enumerate(_ATTRIBUTION_END.finditer(text)):
        if count >= _MAX_CANDIDATES:
            break
        line = start = text.rfind("\n", 0, end.start()) + 1
        for _ in range(3):
            if _ATTRIBUTION_START.match(text, start):
                return start
            previous = text.rfind("\n", 0, max(0, start - 1)) + 1
            if start == 0 or not text[previous:start].strip():
                break  # no blank line inside an attribution
            start = previous
        # "Name <a@b> wrote:" alone on a short line counts when quoted lines follow it.
        if end.end() - line <= 150 and _QUOTED_NEXT.match(text, end.end()):
            return line
    return None


def split_history(text: str, *, subject: str = "") -> Split:
    """``subject`` is the message's own: "Fwd:"/"WG:"/"I:" ... there makes any history a forward
    (Outlook puts the same header block above a forward and a reply)."""
    forward_subject = bool(_FORWARD_SUBJECT.match(subject))
    starts: list[tuple[int, bool]] = []
    if (attribution := _attribution(text)) is not None:
        starts.append((attribution, False))
    if match := _SEPARATOR.search(text):
        starts.append((match.start(), bool(_FORWARD_WORDS.search(match.group(0)))))
    if (block := _outlook_block(text)) is not None:
        starts.append(block)
    if starts:
        at, forwarded = min(starts)
        return Split(text[:at].strip(), text[at:].strip(), forwarded or forward_subject)
    lines = text.split("\n")
    new = [line for line in lines if not line.lstrip().startswith(">")]
    quoted = [line for line in lines if line.lstrip().startswith(">")]
    return Split("\n".join(new).strip(), "\n".join(quoted).strip(), False)
