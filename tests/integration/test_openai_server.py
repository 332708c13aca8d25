"""The local OpenAI-compatible test server, driven by the real openai client and langchain-openai."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pydantic
import pytest
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import BaseModel, Field

from tests.support.openai_server import (
    Fault,
    OpenAIServer,
    RemoteOpenAIServer,
    ToolCall,
    bad_request,
    content_filter,
    example_instance,
    hang,
    invalid_output,
    malformed_json,
    rate_limit,
    server_error,
    truncated_stream,
    unauthorized,
)

pytestmark = pytest.mark.integration

MODEL = "mailspine-test"
Method = Literal["json_schema", "function_calling"]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Please refund order 42."}]


class Party(BaseModel):
    name: str = Field(min_length=2)
    email: str | None = None


class Extraction(BaseModel):
    intent: Literal["refund", "question", "complaint"]
    amount: float = Field(ge=1, le=1000)
    customer: Party
    tags: list[str]
    urgent: bool = False


CANNED = {
    "intent": "complaint",
    "amount": 12.5,
    "customer": {"name": "Ada"},
    "tags": ["billing"],
    "urgent": True,
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def srv(server: OpenAIServer) -> OpenAIServer:
    server.reset()
    server.configure(latency_s=0.0)
    server.state.canned.clear()
    return server


def client(srv: OpenAIServer, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="test", max_retries=0, **kw)


def structured(srv: OpenAIServer, method: Method = "json_schema") -> Runnable[Any, Any]:
    llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model=MODEL, max_retries=0, timeout=5)
    return llm.with_structured_output(Extraction, include_raw=True, method=method)


# ---------------------------------------------------------------- normal answers


def test_plain_chat_and_models(srv: OpenAIServer) -> None:
    c = client(srv)
    assert [m.id for m in c.models.list()] == ["mailspine-test", "mailspine-test-strong"]
    answer = c.chat.completions.create(model="any-model", messages=HELLO)
    assert answer.model == "any-model"
    assert answer.choices[0].message.content == "ok"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens >= 1
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    [call] = srv.calls()
    assert (call.model, call.fault, call.completed, call.has_tools, call.schema_name) == (
        "any-model",
        None,
        True,
        False,
        None,
    )


def test_structured_output_json_schema_invoke_with_canned_arguments(srv: OpenAIServer) -> None:
    srv.configure(canned={"Extraction": CANNED})
    out = structured(srv).invoke("Please refund order 42.")
    assert out["parsing_error"] is None
    assert out["parsed"] == Extraction.model_validate(CANNED)
    usage = out["raw"].usage_metadata
    assert usage["input_tokens"] >= 1 and usage["output_tokens"] >= 1
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    [call] = srv.completed_calls()
    # langchain-openai's ChatOpenAI defaults to method="json_schema": response_format, no tools.
    assert (call.has_tools, call.schema_name, call.message_count) == (False, "Extraction", 1)


async def test_structured_output_ainvoke_generates_a_valid_instance(srv: OpenAIServer) -> None:
    methods: tuple[Method, ...] = ("json_schema", "function_calling")
    for method in methods:
        out = await structured(srv, method).ainvoke("Please refund order 42.")
        assert out["parsing_error"] is None, method
        parsed = out["parsed"]
        assert isinstance(parsed, Extraction)
        assert parsed.intent == "refund" and parsed.amount == 1 and len(parsed.customer.name) >= 2
        assert out["raw"].usage_metadata["total_tokens"] > 0
    first, second = srv.calls()
    assert (first.has_tools, second.has_tools) == (False, True)
    assert first.schema_name == second.schema_name == "Extraction"
    assert first.messages_hash == second.messages_hash


def test_example_instance_handles_refs_anyof_enums_and_bounds() -> None:
    class Line(BaseModel):
        sku: str = Field(min_length=3, max_length=8)
        qty: int = Field(gt=0)

    class Order(BaseModel):
        lines: list[Line] = Field(min_length=1)
        status: Literal["open", "closed"]
        note: str | None
        parent: Line | None
        ratio: float = Field(ge=0.5, le=0.9)

    instance = example_instance(Order.model_json_schema())
    order = Order.model_validate(instance)
    assert order.lines[0].sku == "xxx" and order.lines[0].qty == 1 and order.status == "open"


def test_tool_loop_ends_with_text_after_a_tool_result(srv: OpenAIServer) -> None:
    tool: ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    c = client(srv)
    first = c.chat.completions.create(model=MODEL, messages=HELLO, tools=[tool])
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    follow_up: list[ChatCompletionMessageParam] = [
        *HELLO,
        {"role": "assistant", "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "{}"},
    ]
    second = c.chat.completions.create(model=MODEL, messages=follow_up, tools=[tool])
    assert second.choices[0].message.content == "ok" and not second.choices[0].message.tool_calls
    assert [(r.schema_name, r.message_count) for r in srv.calls()] == [("lookup", 1), (None, 3)]


def test_custom_responder(srv: OpenAIServer) -> None:
    def responder(request: dict[str, Any]) -> str | ToolCall:
        return f"{len(request['messages'])} messages"

    with OpenAIServer(responder=responder) as own:
        answer = client(own).chat.completions.create(model=MODEL, messages=HELLO * 3)
        assert answer.choices[0].message.content == "3 messages"


# ---------------------------------------------------------------- faults


def _chat(srv: OpenAIServer) -> Any:
    return client(srv).chat.completions.create(model=MODEL, messages=HELLO)


def _lc(srv: OpenAIServer) -> Any:
    return structured(srv).invoke("Please refund order 42.")


@pytest.mark.parametrize("call", [_chat, _lc], ids=["openai", "langchain"])
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (rate_limit(3), openai.RateLimitError),
        (server_error(), openai.InternalServerError),
        (bad_request(), openai.BadRequestError),
        (unauthorized(), openai.AuthenticationError),
        (content_filter(as_http_400=True), openai.BadRequestError),
        (truncated_stream(), openai.APIConnectionError),
        (malformed_json(), json.JSONDecodeError),  # a 200 that is not JSON is not mapped to an openai error
    ],
    ids=lambda v: v.kind if isinstance(v, Fault) else None,
)
def test_fault_raises(
    srv: OpenAIServer, call: Callable[[OpenAIServer], Any], fault: Fault, error: type[Exception]
) -> None:
    srv.script(fault)
    with pytest.raises(error) as info:
        call(srv)
    if fault.kind == "rate_limit":
        assert isinstance(info.value, openai.RateLimitError)
        assert info.value.response.headers["retry-after"] == "3"
        assert info.value.response.headers["retry-after-ms"] == "3000"
        assert info.value.code == "rate_limit_exceeded"
    if fault.kind == "content_filter":
        assert isinstance(info.value, openai.BadRequestError) and info.value.code == "content_filter"
    # the fault is consumed: the next call succeeds
    assert call(srv) is not None
    first, second = srv.calls()
    assert (first.fault, first.completed, second.fault, second.completed) == (fault.kind, False, None, True)


def test_content_filter_finish_reason(srv: OpenAIServer) -> None:
    srv.script(content_filter(), content_filter())
    answer = _chat(srv)
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content is None
    # chat.completions.parse (what with_structured_output's json_schema method uses) refuses it
    with pytest.raises(openai.ContentFilterFinishReasonError):
        _lc(srv)
    assert [c.completed for c in srv.calls()] == [True, True]  # answered (and billed), just filtered


def test_invalid_output(srv: OpenAIServer) -> None:
    srv.script(invalid_output(), invalid_output())
    # json_schema method: the openai client parses the content itself, so the call raises
    with pytest.raises(pydantic.ValidationError):
        _lc(srv)
    # function_calling method: the parse failure lands in include_raw's parsing_error
    out = structured(srv, "function_calling").invoke("Please refund order 42.")
    assert out["parsed"] is None and isinstance(out["parsing_error"], pydantic.ValidationError)
    assert out["raw"].tool_calls[0]["args"]["intent"] == 12345
    assert [c.completed for c in srv.calls()] == [True, True]


async def test_hang_times_out_without_blocking_other_calls(srv: OpenAIServer) -> None:
    c = openai.AsyncOpenAI(base_url=srv.base_url, api_key="test", max_retries=0)
    srv.script(hang(2.0))
    started = time.monotonic()
    hung = asyncio.create_task(
        c.with_options(timeout=0.5).chat.completions.create(model=MODEL, messages=HELLO)
    )
    await asyncio.sleep(0.1)
    answer = await c.chat.completions.create(model=MODEL, messages=HELLO)
    assert answer.choices[0].message.content == "ok" and time.monotonic() - started < 0.5
    with pytest.raises(openai.APITimeoutError):
        await hung
    assert time.monotonic() - started < 1.5
    srv.script(hang(0.2))  # shorter than the client's timeout: a slow but complete answer
    assert (await c.chat.completions.create(model=MODEL, messages=HELLO)).choices[0].message.content == "ok"
    await asyncio.sleep(0.1)  # the server notices the abandoned call
    hung_call, normal, slow = srv.calls()
    assert (hung_call.fault, hung_call.completed) == ("hang", False)
    assert normal.completed and slow.completed and slow.fault == "hang"


async def test_langchain_timeout_on_hang(srv: OpenAIServer) -> None:
    llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model=MODEL, max_retries=0, timeout=0.5)
    srv.script(hang(2.0))
    with pytest.raises(openai.APITimeoutError):
        await llm.with_structured_output(Extraction, include_raw=True).ainvoke("hi")


def test_faults_are_fifo_and_latency_applies(srv: OpenAIServer) -> None:
    srv.script(server_error(), rate_limit(1))
    assert [f.kind for f in srv.pending_faults()] == ["server_error", "rate_limit"]
    for error in (openai.InternalServerError, openai.RateLimitError):
        with pytest.raises(error):
            _chat(srv)
    srv.configure(latency_s=0.3)
    started = time.monotonic()
    _chat(srv)
    assert time.monotonic() - started >= 0.3
    assert [c.fault for c in srv.calls()] == ["server_error", "rate_limit", None]
    assert len(srv.completed_calls()) == 1
    srv.reset()
    assert srv.calls() == [] and srv.pending_faults() == []


def test_api_key_check() -> None:
    with OpenAIServer(api_key="k") as own:
        with pytest.raises(openai.AuthenticationError):
            _chat(own)
        answer = openai.OpenAI(base_url=own.base_url, api_key="k", max_retries=0).chat.completions.create(
            model=MODEL,
            messages=HELLO,
        )
        assert answer.choices[0].message.content == "ok"
        assert [(c.fault, c.completed) for c in own.calls()] == [("unauthorized", False), (None, True)]


# ---------------------------------------------------------------- streaming


def test_stream_with_usage_and_tool_call(srv: OpenAIServer) -> None:
    c = client(srv)
    chunks = list(
        c.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "ok"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

    srv.configure(canned={"Extraction": CANNED})
    tool: ChatCompletionToolParam = {
        "type": "function",
        "function": {"name": "Extraction", "parameters": Extraction.model_json_schema()},
    }
    stream = c.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=[tool],
        stream=True,
    )
    args = "".join(
        tc.function.arguments or ""
        for ch in stream
        for tc in (ch.choices[0].delta.tool_calls or [])
        if tc.function is not None
    )
    assert json.loads(args) == CANNED
    assert [c.completed for c in srv.calls()] == [True, True]


async def test_langchain_stream_usage(srv: OpenAIServer) -> None:
    llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model=MODEL, max_retries=0, stream_usage=True)
    final = None
    async for chunk in llm.astream("hello there"):
        final = chunk if final is None else final + chunk
    assert final is not None and final.content == "ok"
    assert final.usage_metadata is not None and final.usage_metadata["total_tokens"] > 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [(truncated_stream(), openai.APIConnectionError), (malformed_json(), json.JSONDecodeError)],
    ids=["truncated", "malformed"],
)
def test_broken_streams_raise(srv: OpenAIServer, fault: Fault, error: type[Exception]) -> None:
    srv.script(fault)
    received = []
    with pytest.raises(error):
        for ch in client(srv).chat.completions.create(model=MODEL, messages=HELLO, stream=True):
            received.append(ch)
    assert received  # some chunks arrived before the stream broke
    assert [(c.fault, c.completed, c.stream) for c in srv.calls()] == [(fault.kind, False, True)]


# ---------------------------------------------------------------- as a separate process


def test_subprocess_mode(tmp_path: Path) -> None:
    state_file = tmp_path / "openai.json"
    with RemoteOpenAIServer(state_file=state_file) as remote:
        assert remote.url.startswith("http://127.0.0.1:")
        remote.script(rate_limit(2), bad_request())
        remote.configure(canned={"text": "from the other process"})
        c = openai.OpenAI(base_url=remote.base_url, api_key="test", max_retries=0)
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model=MODEL, messages=HELLO)
        assert info.value.response.headers["retry-after"] == "2"
        assert [f.kind for f in remote.pending_faults()] == ["bad_request"]
        remote.script(replace=True)
        answer = c.chat.completions.create(model=MODEL, messages=HELLO)
        assert answer.choices[0].message.content == "from the other process"
        assert [(r.fault, r.completed) for r in remote.calls()] == [("rate_limit", False), (None, True)]
        assert len(remote.completed_calls()) == 1
        saved = json.loads(state_file.read_text())
        assert saved["completed"] == 1 and len(saved["calls"]) == 2
        raw = httpx.get(f"{remote.url}/_admin/calls", timeout=5).json()
        assert raw["completed"] == 1
        remote.reset()
        assert remote.calls() == []
        proc = remote.proc
    assert proc is not None and proc.returncode is not None
