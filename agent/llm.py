"""One way to call a model for structured output: traced, usage-counted, "unsure" on bad output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel

from agent.models.factory import model_name
from agent.prompts import Prompt
from agent.state import Usage
from app.telemetry import tracer

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    value: T | None  # None = "unsure": the model's output did not validate
    usage: Usage
    error: str | None = None


async def structured_call(
    model: BaseChatModel, *, schema: type[T], prompt: Prompt, provider: str, **variables: str
) -> StructuredResult[T]:
    name = model_name(model)
    with tracer().start_as_current_span(f"chat {name}") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", provider)
        span.set_attribute("gen_ai.request.model", name)
        span.set_attribute("gen_ai.output.type", "json")
        span.set_attribute("mailspine.prompt", prompt.ref)
        structured = model.with_structured_output(schema, include_raw=True)
        out: dict[str, Any] = await structured.ainvoke(prompt.render(**variables))  # type: ignore[assignment]
        raw = out.get("raw")
        usage = Usage(model_calls=1)
        if isinstance(raw, AIMessage) and raw.usage_metadata:
            usage = Usage(
                input_tokens=raw.usage_metadata["input_tokens"],
                output_tokens=raw.usage_metadata["output_tokens"],
                model_calls=1,
            )
            span.set_attribute("gen_ai.response.model", str(raw.response_metadata.get("model_name", name)))
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        parsed = out.get("parsed")
        if isinstance(parsed, schema):
            return StructuredResult(value=parsed, usage=usage)
        error = str(out.get("parsing_error") or "no structured output")[:500]
        span.set_status(Status(StatusCode.ERROR, "output failed schema validation"))
        span.set_attribute("error.type", "schema_validation")
        return StructuredResult(value=None, usage=usage, error=error)
