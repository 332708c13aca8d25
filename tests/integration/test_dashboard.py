"""The reviewer dashboard against a real gateway (uvicorn on loopback) and a real Postgres database.

Streamlit's ``AppTest`` drives ``dashboard/app.py``; the dashboard only ever talks HTTP to the gateway.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from streamlit.testing.v1 import AppTest

from app.db import Database, libpq_url
from app.hashing import payload_hash
from app.models import EmailStatus
from app.repo import emails, reviews, runs
from app.settings import DEV_REVIEWER_API_KEY, REPO_ROOT, Settings
from dashboard.client import GatewayClient, GatewayError, GatewayUnreachable
from gateway.api import create_app

pytestmark = pytest.mark.integration

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAYLOAD: dict[str, Any] = {
    "plan": {
        "actions": [{"kind": "draft_reply", "to": "a@b.example", "subject": "Re: x", "body": "Hello"}],
        "rationale": "r",
    },
    "reasons": ["refund above 100"],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gateway_url(test_settings: Settings, database_url: str) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings=test_settings, database_url=database_url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)  # signal handlers are skipped off the main thread
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def review_id(db: Database) -> int:
    """A pending review seeded straight into the database, as the agent's review node would leave it."""
    tag = uuid.uuid4().hex
    async with db.transaction() as session:
        email = await emails.insert_email(
            session, account="test", message_id=f"<{tag}@b.example>", content_sha256=tag, raw=b"raw"
        )
        assert email is not None
        await emails.set_parsed(
            session,
            email_id=email.id,
            subject=f"Refund please {tag[:6]}",
            sender_address="a@b.example",
            sender_name="A",
            sent_at=None,
            in_reply_to=None,
            references=[],
            text_body="<script>alert(1)</script> I want a refund of 150 EUR.",
            verdict={"verdict": "pass", "findings": []},
        )
        await emails.set_status(session, email_id=email.id, status=EmailStatus.REVIEW)
        run = await runs.start_run(session, email_id=email.id, thread_id=f"email-{tag}", trace_id=None)
        await runs.update_run(
            session, thread_id=run.thread_id, status="review", extraction={"intent": "refund"}
        )
        review = await reviews.create_review(
            session,
            run_id=run.id,
            email_id=email.id,
            thread_id=run.thread_id,
            reasons=PAYLOAD["reasons"],
            payload=PAYLOAD,
            payload_hash=payload_hash(PAYLOAD["plan"]),
        )
        assert review is not None
        return review.id


def _sign_in(url: str, key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="signin_url").input(url)
    at.text_input(key="signin_key").input(key)
    at.button(key="signin_submit").click().run()
    assert not at.exception
    return at


def _open(at: AppTest, review_id: int) -> AppTest:
    at.selectbox(key="review_pick").set_value(review_id).run()
    assert not at.exception
    return at


def _db_row(database_url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, args).fetchone()


def test_sign_in_edit_and_approve(gateway_url: str, database_url: str, review_id: int) -> None:
    at = _sign_in(gateway_url, DEV_REVIEWER_API_KEY)
    assert "gateway_client" in at.session_state
    queue = at.dataframe[0].value
    assert review_id in list(queue["id"])
    assert "refund above 100" in " ".join(queue["reasons"])

    at = _open(at, review_id)
    shown = " ".join(str(c.value) for c in at.code)
    assert "<script>alert(1)</script>" in shown  # the hostile text is shown verbatim, as text
    at.text_area(key=f"reply_body_{review_id}_0").input("Hello, your refund is on its way.").run()
    at.button(key="approve").click().run()
    assert not at.exception
    assert any(f"Review #{review_id} approved" in s.value for s in at.success)

    status, decided = _db_row(
        database_url, "SELECT status, decided_payload FROM reviews WHERE id = %s", review_id
    )
    assert status == "approved"
    assert decided["plan"]["actions"][0]["body"] == "Hello, your refund is on its way."
    job = _db_row(
        database_url,
        "SELECT id FROM procrastinate_jobs"
        " WHERE task_name = 'resume_review' AND (args->>'review_id')::int = %s",
        review_id,
    )
    assert job is not None
    ids = at.dataframe[0].value["id"] if at.dataframe else []
    assert review_id not in list(ids)  # the queue was refreshed


def test_decided_elsewhere_shows_conflict(gateway_url: str, database_url: str, review_id: int) -> None:
    at = _open(_sign_in(gateway_url, DEV_REVIEWER_API_KEY), review_id)
    at.button(key="reject").click().run()
    assert any("needs a reason" in e.value for e in at.error)
    assert _db_row(database_url, "SELECT status FROM reviews WHERE id = %s", review_id)[0] == "pending"
    assert at.selectbox(key="review_pick").value == review_id  # still open
    with GatewayClient(gateway_url, DEV_REVIEWER_API_KEY) as other:  # another reviewer was quicker
        other.decide(review_id, "approve", payload_hash(PAYLOAD["plan"]))
    at.text_input(key=f"reject_reason_{review_id}").input("not a real customer")
    at.button(key="reject").click().run()
    assert not at.exception
    assert any("Already decided or stale" in w.value for w in at.warning)
    assert _db_row(database_url, "SELECT status FROM reviews WHERE id = %s", review_id)[0] == "approved"


def test_wrong_key_or_unreachable_shows_error_and_no_data(gateway_url: str) -> None:
    at = _sign_in(gateway_url, "not-the-key")
    assert any("refused the API key" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state
    assert not at.dataframe and not at.metric

    at = _sign_in(f"http://127.0.0.1:{_free_port()}", DEV_REVIEWER_API_KEY)
    assert any("unreachable" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state


def test_every_page_renders(gateway_url: str, review_id: int) -> None:
    at = _open(_sign_in(gateway_url, DEV_REVIEWER_API_KEY), review_id)
    assert at.text_area(key=f"reply_body_{review_id}_0").value == "Hello"
    at.switch_page("views/emails.py").run()
    assert not at.exception
    assert {m.label for m in at.metric} >= {"pending reviews", "review"}
    assert at.dataframe[0].value["status"].tolist()
    at.selectbox(key="email_status").set_value("review").run()
    assert not at.exception
    assert set(at.dataframe[0].value["status"]) == {"review"}
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert "gateway_client" not in at.session_state
    assert at.text_input(key="signin_key") is not None


def test_client_reports_api_detail() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "k"
        return httpx.Response(409, json={"detail": "review 7 was already approved by reviewer"})

    client = GatewayClient("http://gw.invalid", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(GatewayError) as err:
        client.decide(7, "approve", "0" * 64)
    assert err.value.conflict and err.value.message == "review 7 was already approved by reviewer"
    assert not isinstance(err.value, GatewayUnreachable)
