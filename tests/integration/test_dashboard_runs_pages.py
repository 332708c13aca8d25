"""The Runs explorer and the Trace viewer under AppTest, against a real gateway and Postgres.

One email is seeded with a finished run and a stored trace (a root span, two graph nodes, a model
call inside one of them and the gateway's guardrail span), then searched, opened and traced.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from app.db import Database
from app.models import Email, EmailStatus, Run, SpanRecord
from app.repo import emails, runs
from tests.integration.test_auth_flows import make_user
from tests.integration.test_dashboard import (  # noqa: F401  (fixtures)
    _sign_in,
    gateway_url,
)

pytestmark = pytest.mark.integration

RUNS, TRACES = "views/runs.py", "views/traces.py"


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    start: datetime,
    ms: float,
    attributes: dict[str, object],
) -> SpanRecord:
    return SpanRecord(
        span_id=span_id,
        trace_id=trace_id,
        parent_span_id=parent,
        name=name,
        kind="INTERNAL",
        service_name="mailspine",
        start_time=start,
        end_time=start + timedelta(milliseconds=ms),
        duration_ms=Decimal(str(ms)),
        status_code="OK",
        status_message=None,
        attributes=attributes,
        events=[],
    )


async def _seed(db: Database, *, sender: str) -> tuple[int, str]:
    """A finished refund run with its trace; returns the email id and the trace id."""
    tag = uuid.uuid4().hex
    trace_id = uuid.uuid4().hex
    ids = [uuid.uuid4().hex[:16] for _ in range(5)]
    root, guard, classify, model, plan = ids
    start = datetime.now(UTC) - timedelta(minutes=5)
    async with db.transaction() as session:
        email = await emails.insert_email(
            session,
            account="test",
            message_id=f"<{tag}@runs.example>",
            content_sha256=tag,
            raw=b"raw",
            trace_id=trace_id,
        )
        assert email is not None
        await emails.set_parsed(
            session,
            email_id=email.id,
            subject=f"Refund {tag[:6]}",
            sender_address=sender,
            sender_name=None,
            sent_at=None,
            in_reply_to=None,
            references=[],
            text_body="Please refund me.",
            verdict={"decision": "pass", "findings": []},
        )
        await emails.set_status(session, email_id=email.id, status=EmailStatus.DONE)
        run = await runs.start_run(session, email_id=email.id, thread_id=f"email-{tag}", trace_id=trace_id)
        await runs.update_run(
            session,
            thread_id=run.thread_id,
            status="done",
            route="auto",
            extraction={"intent": "refund_request"},
            input_tokens=120,
            output_tokens=30,
            cost_usd=Decimal("0.000450"),
        )
        # Fixed times, so the timeline's order is known: received, the spans, then finished.
        await session.execute(
            update(Email).where(Email.id == email.id).values(received_at=start - timedelta(seconds=1))
        )
        await session.execute(
            update(Run).where(Run.id == run.id).values(finished_at=start + timedelta(seconds=2))
        )
        session.add_all(
            [
                _span(trace_id, root, None, "process email", start, 900.0, {"mailspine.email_id": email.id}),
                _span(
                    trace_id,
                    guard,
                    root,
                    "apply_guardrail gateway",
                    start + timedelta(milliseconds=5),
                    40.0,
                    {"mailspine.guardrail.decision": "pass", "mailspine.secret": "must not show"},
                ),
                _span(
                    trace_id,
                    classify,
                    root,
                    "node classify",
                    start + timedelta(milliseconds=50),
                    500.0,
                    {"langgraph.node": "classify"},
                ),
                _span(
                    trace_id,
                    model,
                    classify,
                    "chat local-model",
                    start + timedelta(milliseconds=60),
                    450.0,
                    {
                        "gen_ai.request.model": "local-model",
                        "gen_ai.usage.input_tokens": 120,
                        "gen_ai.usage.output_tokens": 30,
                        "mailspine.model.cost_micro_usd": 450,
                        "mailspine.prompt": "classify@v3",
                    },
                ),
                _span(
                    trace_id,
                    plan,
                    root,
                    "node plan",
                    start + timedelta(milliseconds=600),
                    200.0,
                    {"langgraph.node": "plan"},
                ),
            ]
        )
    return email.id, trace_id


def _chart(at: AppTest) -> dict[str, list[object]]:
    """The data of the page's only chart, decoded from the Arrow stream Streamlit sends."""
    (chart,) = at.get("vega_lite_chart")
    (dataset,) = chart.proto.datasets
    data: dict[str, list[object]] = pa.ipc.open_stream(dataset.data.data).read_all().to_pydict()
    return data


def _runs_page(url: str, email: str) -> AppTest:
    at = _sign_in(url, email)
    at.switch_page(RUNS).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Runs"
    return at


async def test_runs_search_timeline_and_trace(
    gateway_url: str,  # noqa: F811
    db: Database,
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example"
    email_id, trace_id = await _seed(db, sender=f"buyer@{domain}")
    at = _runs_page(gateway_url, await make_user(db, "auditor"))

    at.text_input(key="runs_sender").input(domain).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["email"]) == [email_id]
    row = table.iloc[0]
    assert (row["intent"], row["route"], row["run"], row["status"]) == (
        "refund_request",
        "auto",
        "done",
        "done",
    )
    assert (row["tokens in"], row["tokens out"], row["cost USD"]) == (120, 30, 0.00045)

    # Filters narrow the search: another intent or status matches nothing.
    at.text_input(key="runs_intent").input("spam").run()
    assert not at.dataframe and any("No runs match" in i.value for i in at.info)
    at.text_input(key="runs_intent").input("Not An Intent!").run()
    assert any("lowercase letters and underscores" in w.value for w in at.warning)
    at.text_input(key="runs_intent").input("refund_request").run()
    at.selectbox(key="runs_status").set_value("failed").run()
    assert not at.dataframe
    at.selectbox(key="runs_status").set_value("done").run()
    assert list(at.dataframe[0].value["email"]) == [email_id]

    # The date range: received today (UTC) is inside; a range ending yesterday is not.
    today = datetime.now(UTC).date()
    at.date_input(key="runs_from").set_value(today - timedelta(days=1)).run()
    at.date_input(key="runs_to").set_value(today).run()
    assert list(at.dataframe[0].value["email"]) == [email_id]
    at.date_input(key="runs_to").set_value(today - timedelta(days=1)).run()
    assert not at.dataframe
    at.date_input(key="runs_from").set_value(today).run()
    assert any("before the start date" in w.value for w in at.warning)
    at.date_input(key="runs_to").set_value(today).run()
    assert list(at.dataframe[0].value["email"]) == [email_id]

    # Open the timeline: events in time order, node durations charted, cost and tokens.
    at.selectbox(key="runs_pick").set_value(email_id).run()
    assert not at.exception and not at.error
    assert at.subheader[0].value == f"Email #{email_id}"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["cost USD"] == "0.000450"
    assert (metrics["input tokens"], metrics["output tokens"]) == ("120", "30")
    events = at.dataframe[1].value
    assert list(events["kind"]) == ["ingested", "scanned", "node", "node", "finished"]
    assert list(events["name"])[2:4] == ["classify", "plan"]
    assert list(events["duration ms"])[2:4] == [500.0, 200.0]
    classify_row = events.iloc[2]
    assert (classify_row["tokens in"], classify_row["tokens out"]) == (120, 30)
    assert _chart(at) == {"node": ["01 classify", "02 plan"], "duration ms": [500.0, 200.0]}
    assert at.session_state["trace_handover"] == trace_id

    # The Traces page opens with that trace id and shows the span tree, depth first.
    at.switch_page(TRACES).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Traces"
    assert at.text_input(key="trace_input").value == trace_id
    tree = at.dataframe[0].value
    names = [str(n).replace("\u2003", "").removeprefix("└ ") for n in tree["span"]]
    assert names == [
        "process email",
        "apply_guardrail gateway",
        "node classify",
        "chat local-model",
        "node plan",
    ]
    depth = [str(n).count("\u2003") // 2 for n in tree["span"]]
    assert depth == [0, 1, 1, 2, 1]
    model_row = tree.iloc[3]
    assert (model_row["tokens in"], model_row["tokens out"]) == (120, 30)
    assert model_row["cost USD"] == pytest.approx(0.00045)
    assert (model_row["prompt version"], model_row["model"]) == ("classify@v3", "local-model")
    assert tree.iloc[1]["guardrail"] == "pass"
    assert list(tree["duration ms"]) == [900.0, 40.0, 500.0, 450.0, 200.0]
    assert "must not show" not in tree.to_string()  # only allowlisted attributes leave the gateway
    bars = _chart(at)
    assert bars["duration ms"] == [900.0, 40.0, 500.0, 450.0, 200.0]
    assert bars["span"][3] == "004 chat local-model"
    assert {m.label: m.value for m in at.metric}["spans"] == "5"


async def test_trace_viewer_bad_and_unknown_ids(
    gateway_url: str,  # noqa: F811
    db: Database,
) -> None:
    at = _sign_in(gateway_url, await make_user(db, "reviewer"))
    at.switch_page(TRACES).run()
    assert not at.exception
    assert any("Enter a trace id" in i.value for i in at.info)
    at.text_input(key="trace_input").input("not-a-trace").run()
    assert any("32 hexadecimal digits" in w.value for w in at.warning)
    assert not at.dataframe
    unknown = uuid.uuid4().hex
    at.text_input(key="trace_input").input(unknown).run()
    assert not at.exception
    assert any("404" in e.value and unknown in e.value for e in at.error)
    assert not at.dataframe
