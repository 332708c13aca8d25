"""The reviewer dashboard against a real gateway (uvicorn on loopback) and a real Postgres database.

Streamlit's ``AppTest`` drives ``dashboard/app.py``; the dashboard only ever talks HTTP to the gateway,
signed in as a reviewer user of the test database (or, in dev, with the bootstrap API key).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from app.db import Database, libpq_url
from app.hashing import payload_hash
from app.models import EmailStatus
from app.repo import emails, reviews, runs
from app.settings import DEV_REVIEWER_API_KEY, REPO_ROOT, Settings
from dashboard.client import GatewayClient, GatewayError, GatewayUnreachable
from tests.integration.test_auth_flows import PASSWORD, make_user
from tests.support.gateway_server import served_gateway
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAYLOAD: dict[str, Any] = {
    "plan": {
        "actions": [{"kind": "draft_reply", "to": "a@b.example", "subject": "Re: x", "body": "Hello"}],
        "rationale": "r",
    },
    "reasons": ["refund above 100"],
}


@pytest.fixture(scope="module")
def gateway_url(test_settings: Settings, database_url: str) -> Iterator[str]:
    with served_gateway(test_settings, database_url) as url:
        yield url


@pytest.fixture
async def reviewer(db: Database) -> str:
    """A reviewer account (e-mail; the password is ``PASSWORD``)."""
    return await make_user(db, "reviewer")


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


def _sign_in(url: str, email: str, password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="signin_url").input(url)
    at.text_input(key="signin_email").input(email)
    at.text_input(key="signin_password").input(password)
    at.button(key="signin_submit").click().run()
    assert not at.exception
    return at


def _sign_in_with_key(url: str, key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    at.text_input(key="signin_url").input(url)
    at.text_input(key="signin_key").input(key)
    at.button(key="signin_key_submit").click().run()
    assert not at.exception
    return at


def _open(at: AppTest, review_id: int) -> AppTest:
    at.selectbox(key="review_pick").set_value(review_id).run()
    assert not at.exception
    return at


def _db_row(database_url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(libpq_url(database_url)) as conn:
        return conn.execute(sql, args).fetchone()


def test_sign_in_edit_and_approve(gateway_url: str, database_url: str, reviewer: str, review_id: int) -> None:
    at = _sign_in(gateway_url, reviewer)
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

    status, decided, who = _db_row(
        database_url, "SELECT status, decided_payload, reviewer FROM reviews WHERE id = %s", review_id
    )
    assert status == "approved"
    assert who == reviewer  # the decision carries the reviewer's own identity
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


async def test_decided_elsewhere_shows_conflict(
    gateway_url: str, database_url: str, db: Database, reviewer: str, review_id: int
) -> None:
    at = _open(_sign_in(gateway_url, reviewer), review_id)
    at.button(key="reject").click().run()
    assert any("needs a reason" in e.value for e in at.error)
    assert _db_row(database_url, "SELECT status FROM reviews WHERE id = %s", review_id)[0] == "pending"
    assert at.selectbox(key="review_pick").value == review_id  # still open
    other_reviewer = await make_user(db, "reviewer")
    with GatewayClient.sign_in(
        gateway_url, other_reviewer, PASSWORD
    ) as other:  # another reviewer was quicker
        other.decide(review_id, "approve", payload_hash(PAYLOAD["plan"]))
    at.text_input(key=f"reject_reason_{review_id}").input("not a real customer")
    at.button(key="reject").click().run()
    assert not at.exception
    assert any("Already decided or stale" in w.value for w in at.warning)
    assert _db_row(database_url, "SELECT status FROM reviews WHERE id = %s", review_id)[0] == "approved"


def test_wrong_credentials_or_unreachable_show_error_and_no_data(gateway_url: str, reviewer: str) -> None:
    at = _sign_in(gateway_url, reviewer, "not-the-password")
    assert any("refused your credentials" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state
    assert not at.dataframe and not at.metric

    at = _sign_in_with_key(gateway_url, "not-the-key")
    assert any("refused your credentials" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state

    at = _sign_in(f"http://127.0.0.1:{free_port()}", reviewer)
    assert any("unreachable" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state


def test_api_key_sign_in_in_dev(gateway_url: str, review_id: int) -> None:
    at = _sign_in_with_key(gateway_url, DEV_REVIEWER_API_KEY)
    assert "gateway_client" in at.session_state
    assert review_id in list(at.dataframe[0].value["id"])


async def test_auditor_reads_but_cannot_decide(
    gateway_url: str, database_url: str, db: Database, review_id: int
) -> None:
    auditor = await make_user(db, "auditor")
    at = _open(_sign_in(gateway_url, auditor), review_id)
    assert at.subheader[0].value == f"Review #{review_id}"  # the auditor reads the review
    assert not [b for b in at.button if b.key in ("approve", "reject")]  # and has no decision buttons
    assert any("Read-only" in i.value and "review:write" in i.value for i in at.info)
    with GatewayClient.sign_in(gateway_url, auditor, PASSWORD) as client, pytest.raises(GatewayError) as err:
        client.decide(review_id, "approve", payload_hash(PAYLOAD["plan"]))  # the gateway refuses it too
    assert err.value.status == 403
    assert _db_row(database_url, "SELECT status FROM reviews WHERE id = %s", review_id)[0] == "pending"


def test_every_page_renders(gateway_url: str, database_url: str, reviewer: str, review_id: int) -> None:
    at = _open(_sign_in(gateway_url, reviewer), review_id)
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
    assert at.text_input(key="signin_email") is not None
    ended = _db_row(
        database_url,
        "SELECT count(*) FROM auth_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE u.email = %s AND s.revoked_reason = 'logout'",
        reviewer,
    )
    assert ended[0] == 1  # signing out ended the session at the gateway


def test_client_reports_api_detail() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "k"
        return httpx.Response(409, json={"detail": "review 7 was already approved by reviewer"})

    client = GatewayClient("http://gw.invalid", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(GatewayError) as err:
        client.decide(7, "approve", "0" * 64)
    assert err.value.conflict and err.value.message == "review 7 was already approved by reviewer"
    assert not isinstance(err.value, GatewayUnreachable)


def test_client_refreshes_the_access_token() -> None:
    """Shortly before expiry, and when the gateway says the token expired: one refresh, then the call."""
    calls: list[tuple[str, str | None]] = []
    issued = iter(range(1, 100))

    def tokens() -> httpx.Response:
        n = next(issued)
        body = {
            "access_token": f"a{n}",
            "refresh_token": f"r{n}",
            "expires_in": 900,
            "email": "x@y",
            "role": "reviewer",
        }
        return httpx.Response(200, json=body)

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization")
        calls.append((request.url.path, auth))
        if request.url.path == "/v1/auth/login":
            return tokens()
        if request.url.path == "/v1/auth/refresh":
            assert auth is None  # an expired bearer must not ride along
            return (
                tokens()
                if request.content != b'{"refresh_token":"r2"}'
                else httpx.Response(401, json={"detail": "gone"})
            )
        if auth == "Bearer a1":
            return httpx.Response(401, json={"detail": "access token expired"})
        return httpx.Response(200, json={"emails": {}})

    now = [0.0]
    client = GatewayClient.sign_in(
        "http://gw.invalid", "x@y", "pw", transport=httpx.MockTransport(handler), clock=lambda: now[0]
    )
    assert client.stats() == {"emails": {}}  # a1 refused -> refresh -> a2
    assert [p for p, _ in calls] == ["/v1/auth/login", "/v1/stats", "/v1/auth/refresh", "/v1/stats"]
    now[0] = 900 - 10  # inside the margin: refresh first; r2 is refused, so the session is over
    with pytest.raises(GatewayError) as err:
        client.stats()
    assert err.value.status == 401 and "session has ended" in err.value.message
