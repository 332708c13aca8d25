"""A local OpenAI-compatible chat-completions server for tests: tool calls, usage, faults, a call log.

In-process (a uvicorn server on a free loopback port, in a background thread)::

    with OpenAIServer(canned={"Extraction": {"intent": "refund"}}) as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="test", model="mailspine-test", max_retries=0)
        srv.script(rate_limit(2.0), server_error())  # the next two chat calls fail, then normal answers
        ...
        assert len(srv.completed_calls()) == 1

As its own OS process (for tests whose worker processes call it)::

    python -m tests.support.openai_server --port 0 --state-file var/test/openai.json

prints ``listening on http://127.0.0.1:PORT`` as its first stdout line once it accepts connections
and is controlled over ``/_admin/*`` — ``RemoteOpenAIServer`` starts it and exposes the same methods
as ``OpenAIServer``.

Answers: the ``responder`` gets the request JSON and returns text or a ``ToolCall``. The default
answers a request with ``tools`` by calling the function named by ``tool_choice`` (else the first
tool), and one with ``response_format`` ``json_schema`` with JSON content; either way with the
``canned`` arguments for that tool/schema name, else a minimal instance generated from its JSON schema.

Faults, consumed FIFO one per chat call, and what the openai client (3.54) raises for each:
  rate_limit(s)      429 + Retry-After / retry-after-ms headers  → openai.RateLimitError
  server_error()     500                                         → openai.InternalServerError
  hang(s)            answers only after ``s`` (async, per request) → openai.APITimeoutError if s > timeout
  malformed_json()   200, application/json, body not JSON        → json.JSONDecodeError (not an openai error);
                     streamed: an SSE event that is not JSON      → json.JSONDecodeError while iterating
  truncated_stream() connection closed mid-body, no [DONE]       → openai.APIConnectionError (non-stream);
                                                                   httpx RemoteProtocolError while iterating
  bad_request()      400                                         → openai.BadRequestError
  unauthorized()     401                                         → openai.AuthenticationError
  content_filter()   200, finish_reason "content_filter", no content (what OpenAI itself does);
                     ``chat.completions.parse`` — what ``with_structured_output`` uses by default —
                     raises openai.ContentFilterFinishReasonError; plain ``create`` returns it as is.
                     content_filter(as_http_400=True): Azure's 400 with code "content_filter"
                     → openai.BadRequestError with ``.code == "content_filter"``.
  invalid_output()   200 whose tool arguments / JSON content do not match the schema (wrong types)

A call is *completed* when a whole, wire-valid 200 answer was sent to a client still connected:
the call a provider bills. That includes content_filter and invalid_output answers; it excludes
errors, malformed and truncated answers, and calls the client abandoned (timeout, killed process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

DEFAULT_MODELS = ("mailspine-test", "mailspine-test-strong")
FAULT_KINDS = frozenset(
    {
        "rate_limit",
        "server_error",
        "hang",
        "malformed_json",
        "truncated_stream",
        "bad_request",
        "unauthorized",
        "content_filter",
        "invalid_output",
    }
)
REPO_ROOT = Path(__file__).resolve().parents[2]
JsonDict = dict[str, Any]


# ---------------------------------------------------------------- faults, calls, replies


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    retry_after_s: float = 1.0  # rate_limit
    seconds: float = 0.0  # hang
    as_http_400: bool = False  # content_filter

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {sorted(FAULT_KINDS)}")

    def to_json(self) -> JsonDict:
        return dataclasses.asdict(self)


def rate_limit(retry_after_s: float = 1.0) -> Fault:
    return Fault("rate_limit", retry_after_s=retry_after_s)


def server_error() -> Fault:
    return Fault("server_error")


def hang(seconds: float) -> Fault:
    return Fault("hang", seconds=seconds)


def malformed_json() -> Fault:
    return Fault("malformed_json")


def truncated_stream() -> Fault:
    return Fault("truncated_stream")


def bad_request() -> Fault:
    return Fault("bad_request")


def unauthorized() -> Fault:
    return Fault("unauthorized")


def content_filter(*, as_http_400: bool = False) -> Fault:
    return Fault("content_filter", as_http_400=as_http_400)


def invalid_output() -> Fault:
    return Fault("invalid_output")


@dataclasses.dataclass
class CallRecord:
    index: int
    model: str | None
    fault: str | None  # the scripted fault applied; "unauthorized" also for a failed API-key check
    completed: bool
    has_tools: bool
    schema_name: str | None  # the tool called or the response_format schema's name
    message_count: int
    messages_hash: str
    stream: bool
    started_at: float | None = None  # time.time() when the request arrived
    completed_at: float | None = None  # time.time() when the whole answer was handed to the client
    delay_s: float = 0.0  # the latency applied before answering: the fixed one or a draw from the range


@dataclasses.dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: JsonDict


Reply = str | ToolCall
Responder = Callable[[JsonDict], Reply]


# ---------------------------------------------------------------- JSON schema → instances


def _resolve(schema: JsonDict, root: JsonDict) -> JsonDict:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    if len(schema.get("allOf", ())) == 1:
        schema = {**_resolve(schema["allOf"][0], root), **{k: v for k, v in schema.items() if k != "allOf"}}
    return schema


def _branch(schema: JsonDict) -> JsonDict | None:
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return None
    chosen: JsonDict = next((o for o in options if o.get("type") != "null"), options[0])
    return chosen


def _type(schema: JsonDict) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        return next((k for k in kind if k != "null"), "null")
    return kind


def example_instance(schema: JsonDict, root: JsonDict | None = None) -> Any:
    """A minimal instance of ``schema``: required fields only, first enum value, "x", 0, [], recursing."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    if (branch := _branch(schema)) is not None:
        return example_instance(branch, root)
    kind = _type(schema) or ("object" if "properties" in schema else None)
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: example_instance(props[name], root) for name in schema.get("required", []) if name in props
        }
    if kind == "array":
        return [example_instance(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return _example_string(schema)
    if kind in ("integer", "number"):
        return _example_number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


def _example_string(schema: JsonDict) -> str:
    formats = {
        "email": "x@example.com",
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "time": "00:00:00",
        "uri": "https://example.com/",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    if isinstance(fmt := schema.get("format"), str) and fmt in formats:
        return formats[fmt]
    length = max(1, int(schema.get("minLength", 1)))
    return "x" * min(length, int(schema.get("maxLength", length)))


def _example_number(schema: JsonDict, *, integer: bool) -> float:
    step = 1 if integer else 0.5
    low = schema.get("minimum", schema["exclusiveMinimum"] + step if "exclusiveMinimum" in schema else None)
    high = schema.get("maximum", schema["exclusiveMaximum"] - step if "exclusiveMaximum" in schema else None)
    value: float = 0
    if low is not None and value < low:
        value = math.ceil(low) if integer else low
    if high is not None and value > high:
        value = math.floor(high) if integer else high
    return int(value) if integer else float(value)


def invalid_instance(schema: JsonDict, root: JsonDict | None = None) -> JsonDict:
    """An object with every property of ``schema`` set to a value of the wrong type."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    props = schema.get("properties", {})
    if not props:
        return {"__unexpected__": ["not", "in", "schema"]}
    wrong = {
        "string": 12345,
        "integer": "not-a-number",
        "number": "not-a-number",
        "boolean": "not-a-bool",
        "array": "not-an-array",
        "object": "not-an-object",
    }
    out = {}
    for name, prop in props.items():
        prop = _resolve(prop, root)
        prop = _branch(prop) or prop
        prop = _resolve(prop, root)
        kind = _type(prop) or ("object" if "properties" in prop else "string")
        out[name] = wrong.get(kind, 12345)
    return out


# ---------------------------------------------------------------- the default responder


def tool_to_call(request: JsonDict) -> str | None:
    """The function the model calls: the one ``tool_choice`` names, else the first tool (none after a
    tool result unless ``tool_choice`` is "required", none if it is "none")."""
    tools, choice = request.get("tools"), request.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and (named := (choice.get("function") or {}).get("name")):
        return str(named)
    names = [str(t.get("function", {}).get("name")) for t in tools]
    if isinstance(choice, str) and choice in names:
        return choice
    messages = request.get("messages") or [{}]
    if choice != "required" and messages[-1].get("role") == "tool":
        return None
    return names[0]


def schema_name(request: JsonDict) -> str | None:
    """The tool this request makes the model call, or its response_format schema's name."""
    if (tool := tool_to_call(request)) is not None:
        return tool
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return str(fmt["json_schema"].get("name", "json_schema"))
    if fmt.get("type") == "json_object":
        return "json_object"
    return None


def _schema_for(request: JsonDict, name: str) -> JsonDict:
    for tool in request.get("tools") or ():
        if tool.get("function", {}).get("name") == name:
            return dict(tool["function"].get("parameters") or {"type": "object"})
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return dict(fmt["json_schema"].get("schema") or {"type": "object"})
    return {"type": "object"}


def default_reply(request: JsonDict, canned: JsonDict, text: str = "ok") -> Reply:
    """Canned arguments for the requested tool/schema if the test gave some, else a minimal valid instance."""
    name = schema_name(request)
    if name is None:
        return str(canned.get("text", text))
    arguments = canned[name] if name in canned else example_instance(_schema_for(request, name))
    if name == tool_to_call(request):
        return ToolCall(name, arguments)
    return json.dumps(arguments)


def _corrupt(reply: Reply, request: JsonDict) -> Reply:
    name = schema_name(request)
    if name is None:
        return ""
    wrong = invalid_instance(_schema_for(request, name))
    return ToolCall(reply.name, wrong) if isinstance(reply, ToolCall) else json.dumps(wrong)


# ---------------------------------------------------------------- state shared by HTTP and Python


class ServerState:
    """Script, config and call log; locked, because the test thread and the server's loop both use it.

    Every chat call waits ``latency_s`` before answering or, when ``latency_range_s`` is ``(lo, hi)``,
    a delay drawn uniformly from it by a ``random.Random(seed)`` in arrival order; the delay applied
    is recorded on the call (``CallRecord.delay_s``).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        canned: JsonDict | None = None,
        api_key: str | None = None,
        latency_s: float = 0.0,
        latency_range_s: tuple[float, float] | None = None,
        seed: int = 0,
        models: tuple[str, ...] = DEFAULT_MODELS,
        state_file: Path | None = None,
    ) -> None:
        self.responder = responder
        self.canned: JsonDict = dict(canned or {})
        self.api_key = api_key
        self.latency_s = latency_s
        self.latency_range_s = _checked_range(latency_range_s)
        self._rng = random.Random(seed)
        self.models = models
        self.state_file = state_file
        self.stopping = False
        self._faults: deque[Fault] = deque()
        self._calls: list[CallRecord] = []
        self._lock = threading.Lock()
        if state_file is not None and state_file.exists():
            self._load(json.loads(state_file.read_text() or "{}"))

    def _load(self, saved: JsonDict) -> None:
        # Only the script and config survive a restart; the call log starts empty.
        self._faults.extend(Fault(**f) for f in saved.get("pending_faults", ()))
        self.canned.update(saved.get("canned", {}))
        self.latency_s = float(saved.get("latency_s", self.latency_s))
        if "latency_range_s" in saved:
            self.latency_range_s = _checked_range(saved["latency_range_s"])

    def script(self, *faults: Fault, replace: bool = False) -> None:
        with self._lock:
            if replace:
                self._faults.clear()
            self._faults.extend(faults)
            self._save()

    def configure(
        self,
        *,
        latency_s: float | None = None,
        canned: JsonDict | None = None,
        latency_range_s: tuple[float, float] | None = None,
    ) -> None:
        """A ``latency_s`` given also drops the range (fixed latency from then on); a range replaces it."""
        with self._lock:
            if latency_s is not None:
                self.latency_s = latency_s
                self.latency_range_s = None
            if latency_range_s is not None:
                self.latency_range_s = _checked_range(latency_range_s)
            if canned is not None:
                self.canned.update(canned)
            self._save()

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def calls(self) -> list[CallRecord]:
        with self._lock:
            return [dataclasses.replace(c) for c in self._calls]

    def completed_calls(self) -> list[CallRecord]:
        return [c for c in self.calls() if c.completed]

    def reset(self) -> None:
        """Forget the call log and the pending faults (the config stays)."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._save()

    def begin(self, request: JsonDict, *, authorized: bool) -> tuple[CallRecord, Fault | None]:
        messages = request.get("messages") or []
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
        with self._lock:
            fault = (self._faults.popleft() if self._faults else None) if authorized else unauthorized()
            record = CallRecord(
                index=len(self._calls),
                model=request.get("model"),
                fault=fault.kind if fault else None,
                completed=False,
                has_tools=bool(request.get("tools")),
                schema_name=schema_name(request),
                message_count=len(messages),
                messages_hash=digest,
                stream=bool(request.get("stream")),
                started_at=time.time(),
                delay_s=self._delay(),
            )
            self._calls.append(record)
            self._save()
        return record, fault

    def _delay(self) -> float:
        # Called with the lock held, once per call, so a seed gives the same draws in the same order.
        if self.latency_range_s is None:
            return self.latency_s
        return self._rng.uniform(*self.latency_range_s)

    def complete(self, record: CallRecord) -> None:
        with self._lock:
            record.completed = True  # a record dropped by reset() meanwhile stays dropped
            record.completed_at = time.time()
            self._save()

    def reply(self, request: JsonDict) -> Reply:
        if self.responder is not None:
            return self.responder(request)
        with self._lock:
            canned = dict(self.canned)
        return default_reply(request, canned)

    def snapshot(self) -> JsonDict:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> JsonDict:
        calls = [dataclasses.asdict(c) for c in self._calls]
        return {
            "calls": calls,
            "completed": sum(c["completed"] for c in calls),
            "pending_faults": [f.to_json() for f in self._faults],
            "latency_s": self.latency_s,
            "latency_range_s": list(self.latency_range_s) if self.latency_range_s else None,
            "canned": self.canned,
        }

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self._snapshot(), indent=1))
        os.replace(tmp, self.state_file)


def _checked_range(bounds: Any) -> tuple[float, float] | None:
    """``(lo, hi)`` as floats with ``0 <= lo <= hi``; ``None`` stays ``None`` (fixed latency)."""
    if bounds is None:
        return None
    lo, hi = (float(b) for b in bounds)
    if not 0 <= lo <= hi:
        raise ValueError(f"latency range must satisfy 0 <= lo <= hi, got {bounds!r}")
    return lo, hi


# ---------------------------------------------------------------- the HTTP app


class _Truncated(Exception):
    """Raised inside a response body to make uvicorn drop the connection mid-answer."""


def _is_truncation(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_truncation(e) for e in exc.exceptions)
    return isinstance(exc, _Truncated)


class _QuietTruncation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_truncation(record.exc_info[1]))


def _error(status: int, message: str, err_type: str, code: str | None, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _message(reply: Reply, index: int, finish: str) -> tuple[JsonDict, str]:
    if finish == "content_filter":
        return {"role": "assistant", "content": None, "refusal": None}, ""
    if isinstance(reply, ToolCall):
        args = json.dumps(reply.arguments)
        call = {
            "id": f"call_{index}_0",
            "type": "function",
            "function": {"name": reply.name, "arguments": args},
        }
        return {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [call],
        }, reply.name + args
    return {"role": "assistant", "content": reply, "refusal": None}, reply


def _stream_events(message: JsonDict, base: JsonDict, finish: str, usage: JsonDict | None) -> Iterator[str]:
    def chunk(delta: JsonDict, finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return json.dumps({**base, "choices": [choice], **({"usage": None} if usage else {})})

    if calls := message.get("tool_calls"):
        call, args = calls[0], calls[0]["function"]["arguments"]
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"]},
        }
        yield chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**head, "function": {**head["function"], "arguments": ""}}],
            }
        )
        for i in range(0, len(args), 16):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 16]}}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for i in range(0, len(text), 16):
            yield chunk({"content": text[i : i + 16]})
    yield chunk({}, finish)
    if usage:
        yield json.dumps({**base, "choices": [], "usage": usage})


def build_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="mailspine test OpenAI server", openapi_url=None, docs_url=None, redoc_url=None)

    async def pause(seconds: float, request: Request) -> bool:
        """Sleep without blocking other requests; False when the client left or the server is stopping."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))
            if state.stopping or await request.is_disconnected():
                return False
        return True

    @app.get("/v1/models")
    async def models() -> JsonDict:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "mailspine-tests"} for m in state.models
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error", None
            )
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return _error(400, "'model' and 'messages' are required.", "invalid_request_error", None)
        authorized = (
            state.api_key is None or request.headers.get("authorization") == f"Bearer {state.api_key}"
        )
        record, fault = state.begin(body, authorized=authorized)
        index = record.index
        kind = fault.kind if fault else None
        gone = Response(status_code=499)
        if record.delay_s and not await pause(record.delay_s, request):
            return gone
        if fault is not None and (early := _early_fault(fault)) is not None:
            return early
        if fault is not None and kind == "hang" and not await pause(fault.seconds, request):
            return gone

        reply = state.reply(body)
        if kind == "invalid_output":
            reply = _corrupt(reply, body)
        finish = "tool_calls" if isinstance(reply, ToolCall) else "stop"
        if kind == "content_filter":
            finish = "content_filter"
        message, out_text = _message(reply, index, finish)
        prompt_tokens = _tokens(json.dumps(body["messages"]))
        completion_tokens = _tokens(out_text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        base = {
            "id": f"chatcmpl-{index}-{uuid.uuid4().hex[:12]}",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": None,
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _stream_events(
                message, {**base, "object": "chat.completion.chunk"}, finish, usage if include_usage else None
            )
            return StreamingResponse(
                _sse(events, kind, lambda: state.complete(record)), media_type="text/event-stream"
            )

        if kind == "malformed_json":
            return Response(
                '{"id": "chatcmpl-broken", "choices": [{"index": 0, "message": ',
                media_type="application/json",
            )
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        completion = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        if kind == "truncated_stream":
            payload = json.dumps(completion).encode()
            return StreamingResponse(
                _truncated_body(payload),
                media_type="application/json",
                headers={"content-length": str(len(payload))},
            )
        if await request.is_disconnected():
            return gone
        state.complete(record)
        return JSONResponse(completion)

    @app.post("/_admin/script")
    async def admin_script(request: Request) -> JsonDict:
        body = await request.json()
        state.script(*(Fault(**f) for f in body.get("faults", ())), replace=bool(body.get("replace")))
        return {"pending_faults": [f.to_json() for f in state.pending_faults()]}

    @app.post("/_admin/config")
    async def admin_config(request: Request) -> JsonDict:
        body = await request.json()
        state.configure(
            latency_s=body.get("latency_s"),
            canned=body.get("canned"),
            latency_range_s=body.get("latency_range_s"),
        )
        snap = state.snapshot()
        return {
            "latency_s": snap["latency_s"],
            "latency_range_s": snap["latency_range_s"],
            "canned": snap["canned"],
        }

    @app.get("/_admin/calls")
    async def admin_calls() -> JsonDict:
        return state.snapshot()

    @app.post("/_admin/reset")
    async def admin_reset() -> JsonDict:
        state.reset()
        return {"ok": True}

    return app


def _early_fault(fault: Fault) -> Response | None:
    """The faults that answer with an HTTP error instead of a completion."""
    if fault.kind == "rate_limit":
        return _error(
            429,
            "Rate limit reached for requests (scripted). Please try again later.",
            "requests",
            "rate_limit_exceeded",
            **{
                "retry-after": str(math.ceil(fault.retry_after_s)),
                "retry-after-ms": str(int(fault.retry_after_s * 1000)),
            },
        )
    if fault.kind == "server_error":
        return _error(
            500, "The server had an error while processing your request (scripted).", "server_error", None
        )
    if fault.kind == "bad_request":
        return _error(400, "Invalid request (scripted).", "invalid_request_error", None)
    if fault.kind == "unauthorized":
        return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    if fault.kind == "content_filter" and fault.as_http_400:
        message = (
            "The response was filtered due to the prompt triggering content management policy (scripted)."
        )
        return _error(400, message, "invalid_request_error", "content_filter")
    return None


async def _sse(
    events: Iterator[str], kind: str | None, on_complete: Callable[[], None]
) -> AsyncIterator[str]:
    for n, event in enumerate(events):
        if kind == "truncated_stream" and n == 2:
            yield f"data: {event[: len(event) // 2]}"
            raise _Truncated
        if kind == "malformed_json" and n == 1:
            yield "data: {this is not json\n\n"
            return
        yield f"data: {event}\n\n"
    yield "data: [DONE]\n\n"
    on_complete()


async def _truncated_body(payload: bytes) -> AsyncIterator[bytes]:
    yield payload[: len(payload) // 2]
    raise _Truncated


# ---------------------------------------------------------------- running it


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.state.stopping = True
        super().handle_exit(sig, frame)


def _uvicorn(state: ServerState, *, log_config: Any) -> _Uvicorn:
    logging.getLogger("uvicorn.error").addFilter(_QuietTruncation())
    config = uvicorn.Config(
        build_app(state),
        log_config=log_config,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return _Uvicorn(config, state)


class _Control:
    """The Python control API, shared by the in-thread and the subprocess server."""

    url = ""  # http://127.0.0.1:PORT once started

    @property
    def base_url(self) -> str:
        """What to give ``openai.OpenAI(base_url=...)`` / ``ChatOpenAI(base_url=...)``."""
        return f"{self.url}/v1"


class OpenAIServer(_Control):
    """The server in a background thread of this process; its state is shared directly, not over HTTP."""

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        canned: JsonDict | None = None,
        api_key: str | None = None,
        latency_s: float = 0.0,
        latency_range_s: tuple[float, float] | None = None,
        seed: int = 0,
        models: tuple[str, ...] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self.state = ServerState(
            responder=responder,
            canned=canned,
            api_key=api_key,
            latency_s=latency_s,
            latency_range_s=latency_range_s,
            seed=seed,
            models=models,
            state_file=state_file,
        )
        self.host, self.port = host, port
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> OpenAIServer:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self.state.stopping = False
        self._server = _uvicorn(self.state, log_config=None)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"openai-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test OpenAI server did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.state.stopping = True
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *faults: Fault, replace: bool = False) -> None:
        self.state.script(*faults, replace=replace)

    def configure(
        self,
        *,
        latency_s: float | None = None,
        canned: JsonDict | None = None,
        latency_range_s: tuple[float, float] | None = None,
    ) -> None:
        self.state.configure(latency_s=latency_s, canned=canned, latency_range_s=latency_range_s)

    def pending_faults(self) -> list[Fault]:
        return self.state.pending_faults()

    def calls(self) -> list[CallRecord]:
        return self.state.calls()

    def completed_calls(self) -> list[CallRecord]:
        return self.state.completed_calls()

    def reset(self) -> None:
        self.state.reset()


class RemoteOpenAIServer(_Control):
    """``python -m tests.support.openai_server`` as a child process, controlled over ``/_admin/*``."""

    def __init__(
        self,
        *,
        state_file: Path | None = None,
        api_key: str | None = None,
        latency_s: float = 0.0,
        port: int = 0,
    ) -> None:
        self.args = ["--port", str(port), "--latency-s", str(latency_s)]
        if state_file is not None:
            self.args += ["--state-file", str(state_file)]
        if api_key is not None:
            self.args += ["--api-key", api_key]
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None  # the child's stderr, kept for error messages, echoed on stop()

    def start(self, timeout_s: float = 20.0) -> RemoteOpenAIServer:
        """Start the child; return once its admin API answers, not merely once it printed its URL."""
        cmd = [sys.executable, "-m", "tests.support.openai_server", *self.args]
        deadline = time.monotonic() + timeout_s
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise self._failure(f"printed {line!r} instead of 'listening on URL'")
        self.url = line.removeprefix("listening on ").strip()
        while True:
            try:
                httpx.get(f"{self.url}/_admin/calls", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise self._failure(f"did not answer GET {self.url}/_admin/calls ({exc!r})") from exc
            time.sleep(0.05)

    def _failure(self, what: str) -> RuntimeError:
        """Stop the child and describe why it did not start: its exit code and the end of its stderr."""
        assert self.proc is not None and self._stderr is not None
        with contextlib.suppress(subprocess.TimeoutExpired):  # give a crashing child time to be reaped
            self.proc.wait(timeout=2)
        code = self.proc.poll()
        status = "is still running" if code is None else f"exited with code {code}"
        self._stderr.seek(0)
        output = self._stderr.read()[-2000:]
        self.stop()
        return RuntimeError(f"test OpenAI server process {what}; it {status}; stderr tail: {output!r}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        if self._stderr is not None:  # echo it where the child's stderr would have gone (pytest shows it)
            self._stderr.seek(0)
            sys.stderr.write(self._stderr.read())
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> RemoteOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _admin(self, method: str, path: str, body: JsonDict | None = None) -> JsonDict:
        answer = httpx.request(method, f"{self.url}/_admin/{path}", json=body, timeout=10)
        answer.raise_for_status()
        result: JsonDict = answer.json()
        return result

    def script(self, *faults: Fault, replace: bool = False) -> None:
        self._admin("POST", "script", {"faults": [f.to_json() for f in faults], "replace": replace})

    def configure(self, *, latency_s: float | None = None, canned: JsonDict | None = None) -> None:
        self._admin("POST", "config", {"latency_s": latency_s, "canned": canned})

    def pending_faults(self) -> list[Fault]:
        return [Fault(**f) for f in self._admin("GET", "calls")["pending_faults"]]

    def calls(self) -> list[CallRecord]:
        return [CallRecord(**c) for c in self._admin("GET", "calls")["calls"]]

    def completed_calls(self) -> list[CallRecord]:
        return [c for c in self.calls() if c.completed]

    def reset(self) -> None:
        self._admin("POST", "reset")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument(
        "--state-file", type=Path, help="JSON file: script/config loaded at start, state saved on change"
    )
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on chat calls")
    parser.add_argument("--latency-s", type=float, default=0.0, help="fixed latency added to every chat call")
    args = parser.parse_args(argv)
    state = ServerState(api_key=args.api_key, latency_s=args.latency_s, state_file=args.state_file)
    sock = _bind(args.host, args.port)
    server = _uvicorn(state, log_config=uvicorn.config.LOGGING_CONFIG)
    url = f"http://{args.host}:{sock.getsockname()[1]}"

    async def serve() -> None:
        """Run uvicorn; print the URL only once it accepts connections (a bound socket refuses them)."""
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn sets a flag, no event
            await asyncio.sleep(0.01)
        if server.started:
            print(f"listening on {url}", flush=True)
        await serving

    with contextlib.closing(sock):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
