"""The model side of the chaos suite: the local OpenAI-compatible server, answering like the
offline model, and the map from each prompt back to the email it was about."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent.prompting import BEGIN, DATAMARK, END, _clean
from tests.support.offline_responder import _text, offline_responder
from tests.support.openai_server import ToolCall

MODEL_LATENCY_S = 0.5  # every model call takes this long, so kills land inside model calls
SCHEMA_NODE = {"Extraction": "extract", "Plan": "plan"}  # structured-output schema → graph node


class RecordingResponder:
    """Answers like the offline model and remembers which email each prompt was about.

    The server's call log (``CallRecord``) has the messages' hash but not the thread; every prompt
    carries the email's text in its spotlighting block, so hash → email text is kept here and
    mapped to an email id afterwards (``email_for_body``)."""

    def __init__(self) -> None:
        self.body_by_hash: dict[str, str] = {}

    def __call__(self, request: dict[str, Any]) -> str | ToolCall:
        messages = request.get("messages") or []
        # The same digest as ServerState.begin in tests/support/openai_server.py.
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        prompt = "\n".join(_text(m.get("content")) for m in messages)
        self.body_by_hash[digest] = normalise(email_body(prompt))
        return offline_responder(request)


def email_body(prompt: str) -> str:
    """The email text in the prompt's last spotlighting block (the system prompt names the markers
    too, so the first one is not the data)."""
    start, end = prompt.rfind(BEGIN), prompt.rfind(END)
    if start < 0 or end < start:
        return ""
    block = prompt[start + len(BEGIN) : end].replace(DATAMARK, " ")
    return block.partition("\n\n")[2]


def agent_text(text_body: str | None) -> str:
    """What the prompt's block starts with, from ``emails.text_body`` (the redacted text)."""
    return normalise(_clean(text_body or ""))


def normalise(text: str) -> str:
    return " ".join(text.split())


_KEY = 16  # bodies are grouped by their first characters: one lookup per call, not one per email


class BodyIndex:
    """Email texts grouped by their first ``_KEY`` characters, so that mapping each of many model
    calls back to its email (``email_for_body``) does not compare it with every email (the soak's
    10,000 emails and 20,000 calls)."""

    def __init__(self, bodies: dict[int, str]) -> None:
        self.groups: dict[str, list[tuple[int, str, int]]] = {}  # key → (email id, head, length)
        self.short: list[tuple[int, str, int]] = []  # texts shorter than the key: compared with every call
        for i, text in bodies.items():
            if not text:
                continue
            entry = (i, text[:400], len(text))
            if len(text) >= _KEY:
                self.groups.setdefault(text[:_KEY], []).append(entry)
            else:
                self.short.append(entry)


def email_for_body(body: str, bodies: dict[int, str] | BodyIndex) -> int | None:
    """The email whose text the prompt's block starts with (the longest such text wins)."""
    index = bodies if isinstance(bodies, BodyIndex) else BodyIndex(bodies)
    candidates = [*index.groups.get(body[:_KEY], ()), *index.short]
    matches = [(length, i) for i, head, length in candidates if body.startswith(head)]
    return max(matches)[1] if matches else None
