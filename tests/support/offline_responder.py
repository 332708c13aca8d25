"""A responder for the local OpenAI-compatible server that answers like mailspine's offline model.

The provider path (``ChatOpenAI`` over HTTP, retries, breaker, budgets) then produces the same
extractions and plans as the demo, so a run against the server can be checked against the demo's
expected outcomes.
"""

from __future__ import annotations

from typing import Any

from agent.models.offline import HANDLERS
from tests.support.openai_server import ToolCall, tool_to_call


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def offline_responder(request: dict[str, Any]) -> str | ToolCall:
    name = tool_to_call(request)
    if name not in HANDLERS:
        return "The offline responder only answers structured requests."
    prompt = "\n".join(_text(m.get("content")) for m in request.get("messages") or [])
    return ToolCall(name, HANDLERS[name](prompt))
