"""Instruction-injection patterns in en/de/fr/es/it/pt/nl, loaded once from ``data/patterns.json``.

One source for mailspine's own heuristics (``gateway.scanners``) and llm-guard's Regex and
BanSubstrings scanners, so a fork edits one JSON file. Every regex is matched case-insensitively
with ``^``/``$`` per line. Python's ``re`` tries each of ~50 patterns at every position (about
250 ms for 100 KB), so each pattern lists ``any``: substrings one of which every match contains.
The regex runs only on the lines around those (found with ``str.find``, C speed): ~1 ms per 10 KB.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
FLAGS = re.IGNORECASE | re.MULTILINE
_MARGIN = 240  # characters around an anchor: longer than any match the bounded gaps allow
_MAX_ANCHORS = 200  # more occurrences than this: search the whole text once instead

# Groups whose matches mean "this text tries to instruct the model", with their labels in reasons.
INSTRUCTION_GROUPS = {
    "override": "instruction override",
    "role_assumption": "role reassignment",
    "prompt_leak": "prompt/credential leak request",
    "exfiltration": "bulk exfiltration request",
    "assistant_address": "text addressed to the AI",
    "role_line": "chat role line",
    "tool_call": "tool-call syntax",
    "approval_claim": "claimed prior approval / no review needed",
    "recipient_change": "request to add a recipient or change the reply address",
    "exfil_link": "markdown image/link that sends data to a URL",
}

# Signals that a person must look, not proof of an attack: a customer may truly say "your colleague
# approved it". Each counts once however many of its patterns match, so alone they flag (review)
# and never reach the quarantine threshold.
SOFT_KINDS = frozenset({"approval_claim", "recipient_change", "exfil_link"})


@dataclass(frozen=True)
class Pattern:
    kind: str  # a key of INSTRUCTION_GROUPS
    lang: str  # "en", "de", ... or "*" for language-neutral syntax
    regex: re.Pattern[str]
    anchors: tuple[str, ...]  # lowercase; every match contains one of them
    examples: tuple[str, ...]

    def search(self, text: str, lowered: str) -> bool:
        """``regex.search(text)``, run only around the anchors (``lowered`` is ``text.lower()``)."""
        if len(lowered) != len(text):  # lower() changed offsets (rare: "İ"); search it all
            return self.regex.search(text) is not None
        spans: list[tuple[int, int]] = []
        for anchor in self.anchors:
            at = lowered.find(anchor)
            while at != -1:
                if len(spans) >= _MAX_ANCHORS:
                    return self.regex.search(text) is not None
                spans.append((at, at + len(anchor)))
                at = lowered.find(anchor, at + 1)
        windows: list[list[int]] = []
        for at, stop in sorted(spans):
            start = text.rfind("\n", 0, max(0, at - _MARGIN)) + 1  # from a line start, for ^
            end = text.find("\n", stop + _MARGIN)
            end = len(text) if end == -1 else end
            if windows and start <= windows[-1][1]:
                windows[-1][1] = max(windows[-1][1], end)
            else:
                windows.append([start, end])
        return any(self.regex.search(text, start, end) for start, end in windows)


@dataclass(frozen=True)
class Hits:
    by_kind: dict[str, dict[str, int]]  # kind -> language -> patterns of that kind and language that matched
    chat_token: bool

    @property
    def count(self) -> int:
        """Distinct findings: per kind, the most patterns matched in one language (cognates such as
        "ignore ... instructions" match the en and fr patterns alike and count once; a soft kind
        counts once at most), plus chat tokens."""
        return (
            sum(
                min(1, max(langs.values())) if kind in SOFT_KINDS else max(langs.values())
                for kind, langs in self.by_kind.items()
            )
            + self.chat_token
        )

    @property
    def labels(self) -> list[str]:
        out = []
        for kind, langs in self.by_kind.items():
            named = [lang for lang in langs if lang != "*"]
            out.append(INSTRUCTION_GROUPS[kind] + (f" ({', '.join(named)})" if named else ""))
        return out + (["chat-template token"] if self.chat_token else [])

    def __bool__(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        return ", ".join(self.labels)


@dataclass(frozen=True)
class PatternSet:
    instructions: tuple[Pattern, ...]
    chat_tokens: tuple[str, ...]  # special tokens of chat templates, matched as plain substrings
    ban_phrases: tuple[str, ...]  # literal "ignore previous instructions" variants, lowercase, 7 languages
    jailbreak_phrases: tuple[str, ...]
    forward_markers: tuple[re.Pattern[str], ...]
    forward_headers: re.Pattern[str]

    def matches(self, text: str) -> Hits:
        """The instruction patterns found in ``text``, plus chat-template tokens."""
        lowered = text.lower()
        by_kind: dict[str, dict[str, int]] = {}
        for p in self.instructions:
            if p.search(text, lowered):
                langs = by_kind.setdefault(p.kind, {})
                langs[p.lang] = langs.get(p.lang, 0) + 1
        chat_token = any(token.lower() in lowered for token in self.chat_tokens)
        return Hits(by_kind=by_kind, chat_token=chat_token)

    def syntax_regex_sources(self) -> list[str]:
        """Role-line and tool-call patterns with inline flags, for llm-guard's ``Regex`` (which compiles
        without flags). They are cheap on a whole text: anchored at line starts or on rare characters."""
        kinds = ("role_line", "tool_call")
        return ["(?im)" + p.regex.pattern for p in self.instructions if p.kind in kinds]

    def banned_substrings(self) -> list[str]:
        """Lowercase literals for llm-guard's ``BanSubstrings``."""
        phrases = (*self.ban_phrases, *self.chat_tokens, *self.jailbreak_phrases)
        return list(dict.fromkeys(p.lower() for p in phrases))


def _entries(kind: str, value: Any) -> list[Pattern]:
    by_lang = value.items() if isinstance(value, dict) else [("*", value)]
    return [
        Pattern(
            kind=kind,
            lang=lang,
            regex=re.compile(entry["re"], FLAGS),
            anchors=tuple(a.lower() for a in entry["any"]),
            examples=tuple(entry["examples"]),
        )
        for lang, entries in by_lang
        for entry in entries
    ]


@cache
def load_patterns(path: Path = DATA_DIR / "patterns.json") -> PatternSet:
    data = json.loads(path.read_text(encoding="utf-8"))
    return PatternSet(
        instructions=tuple(p for kind in INSTRUCTION_GROUPS for p in _entries(kind, data[kind])),
        chat_tokens=tuple(data["chat_tokens"]),
        ban_phrases=tuple(p.lower() for phrases in data["ban_phrases"].values() for p in phrases),
        jailbreak_phrases=tuple(data["jailbreak_phrases"]),
        forward_markers=tuple(re.compile(src, FLAGS) for src in data["forward_markers"]),
        forward_headers=re.compile("|".join(data["forward_headers"]), FLAGS),
    )
