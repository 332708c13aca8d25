"""A deterministic offline chat model implementing LangChain's ``BaseChatModel``.

It answers structured-output (tool-calling) requests for the schemas the graph uses, with rules
instead of weights, and reports token usage like a real provider. Because it is a real chat model,
the graph calls it through exactly the code path a real provider takes: ``with_structured_output``
→ ``bind_tools`` → a tool call parsed into the pydantic schema.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.models import offline_planner, offline_rules
from agent.prompting import unwrap_email_block
from agent.schemas import Extraction

_EXTRACTION = re.compile(r"<extraction>(.*?)</extraction>", re.DOTALL)
_ADDRESS = re.compile(r"<([^>]+)>\s*$")


def _address(sender: str | None) -> str | None:
    if not sender:
        return None
    match = _ADDRESS.search(sender)
    return (match.group(1) if match else sender).strip() or None


def _extract(prompt: str) -> dict[str, Any]:
    sender, subject, body = unwrap_email_block(prompt)
    return offline_rules.extract(subject=subject, body=body, sender=sender).model_dump(mode="json")


def _plan(prompt: str) -> dict[str, Any]:
    sender, subject, _ = unwrap_email_block(prompt)
    match = _EXTRACTION.search(prompt)
    if not match:
        return {"actions": [], "rationale": "No extraction was given."}
    extraction = Extraction.model_validate_json(match.group(1))
    return offline_planner.plan(extraction, sender=_address(sender), subject=subject)


HANDLERS: dict[str, Callable[[str], dict[str, Any]]] = {"Extraction": _extract, "Plan": _plan}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OfflineChatModel(BaseChatModel):
    model_name: str = "offline-fast"

    @property
    def _llm_type(self) -> str:
        return "mailspine-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = "\n".join(m.text for m in messages)
        tools = kwargs.get("tools") or []
        names = [t["function"]["name"] for t in tools]
        handler = next((HANDLERS[n] for n in names if n in HANDLERS), None)
        if handler is None:
            message = AIMessage(content="The offline model only answers structured requests.")
        else:
            args = handler(prompt)
            name = next(n for n in names if n in HANDLERS)
            message = AIMessage(
                content="",
                tool_calls=[
                    {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
                ],
            )
        out_tokens = _tokens(json.dumps(message.tool_calls) + message.text)
        message.usage_metadata = {
            "input_tokens": _tokens(prompt),
            "output_tokens": out_tokens,
            "total_tokens": _tokens(prompt) + out_tokens,
        }
        message.response_metadata = {"model_name": self.model_name, "finish_reason": "tool_calls"}
        return ChatResult(generations=[ChatGeneration(message=message)])
