"""Every dashboard page under AppTest, per role, against a real gateway and Postgres.

The pages come from ``dashboard.nav.PAGES``, so a page added there is rendered here for every role
that may see it. Also: pages a role or key cannot use are not registered at all, and the review
queue's SLA column and filters.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.db import Database
from app.hashing import payload_hash
from app.models import EmailStatus
from app.repo import emails, pii_vault, reviews, runs
from app.settings import Settings
from dashboard.nav import PAGES, visible_pages
from tests.integration.test_auth_flows import make_key, make_user
from tests.integration.test_dashboard import (  # noqa: F401  (fixtures)
    PAYLOAD,
    _db_row,
    _open,
    _sign_in,
    _sign_in_with_key,
    gateway_url,
)

pytestmark = pytest.mark.integration


async def _seed(
    db: Database,
    database_url: str,
    *,
    sender: str,
    reasons: list[str],
    hours_old: float,
    intent: str | None = None,
    history: list[dict[str, Any]] | None = None,
    trace_id: str | None = None,
    vault: tuple[str, dict[str, tuple[str, str]]] | None = None,
) -> int:
    """A pending review from ``sender``, created ``hours_old`` hours ago. Without ``history`` its
    payload is one made before reviews kept the agent's history (no "history" key). ``vault`` is
    (vault key, PII vault entries) for the email."""
    tag = uuid.uuid4().hex
    payload: dict[str, Any] = {"plan": PAYLOAD["plan"], "reasons": reasons}
    if history is not None:
        payload["history"] = history
    async with db.transaction() as session:
        email = await emails.insert_email(
            session,
            account="test",
            message_id=f"<{tag}@b.example>",
            content_sha256=tag,
            raw=b"raw",
            trace_id=trace_id,
        )
        assert email is not None
        await emails.set_parsed(
            session,
            email_id=email.id,
            subject=f"Subject {tag[:6]}",
            sender_address=sender,
            sender_name=None,
            sent_at=None,
            in_reply_to=None,
            references=[],
            text_body="Please refund me.",
            verdict={"verdict": "pass", "findings": []},
        )
        await emails.set_status(session, email_id=email.id, status=EmailStatus.REVIEW)
        if vault:
            key, entries = vault
            await pii_vault.store(session, email_id=email.id, entries=entries, key=key)
        run = await runs.start_run(session, email_id=email.id, thread_id=f"email-{tag}", trace_id=trace_id)
        if intent:
            await runs.update_run(
                session, thread_id=run.thread_id, status="review", extraction={"intent": intent}
            )
        review = await reviews.create_review(
            session,
            run_id=run.id,
            email_id=email.id,
            thread_id=run.thread_id,
            reasons=reasons,
            payload=payload,
            payload_hash=payload_hash(PAYLOAD["plan"]),
        )
        assert review is not None
    _db_row(
        database_url,
        "UPDATE reviews SET created_at = now() - make_interval(secs => %s) WHERE id = %s RETURNING id",
        hours_old * 3600,
        review.id,
    )
    return review.id


@pytest.mark.parametrize("role", ["reviewer", "admin", "auditor"])
async def test_every_page_renders_for_every_role(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
    role: str,
) -> None:
    await _seed(db, database_url, sender=f"{role}@render.example", reasons=["refund above 100"], hours_old=1)
    at = _sign_in(gateway_url, await make_user(db, role))
    client = at.session_state["gateway_client"]
    assert client.role == role
    pages = visible_pages(client.scopes)
    # Every role may use today's pages but the prompt console, which is the admins' only.
    assert [p.title for p in pages] == [p.title for p in PAGES if role == "admin" or p.title != "Prompts"]
    assert any(f"({role})" in c.value for c in at.sidebar.caption)
    for page in pages:
        at.switch_page(page.path).run()
        assert not at.exception, (page.path, at.exception)
        assert at.title[0].value == page.title
        assert not at.error, [e.value for e in at.error]


async def test_pages_a_key_cannot_use_are_not_registered(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
) -> None:
    await _seed(db, database_url, sender="key@render.example", reasons=["refund above 100"], hours_old=1)
    at = _sign_in_with_key(gateway_url, await make_key(db, "review:read"))
    assert at.title[0].value == "Review queue"
    assert not [b for b in at.button if b.key in ("approve", "reject")]  # read-only
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/emails.py")

    at = _sign_in_with_key(gateway_url, await make_key(db, "emails:read", "stats:read"))
    assert at.title[0].value == "Emails"  # the landing page is the first one it may use
    assert at.metric
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/reviews.py")

    at = _sign_in_with_key(gateway_url, await make_key(db, "ingest"))
    assert any("may use no page of the dashboard" in e.value and "ingest" in e.value for e in at.error)
    assert "gateway_client" not in at.session_state


async def test_review_queue_sla_and_filters(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example"
    late = await _seed(db, database_url, sender=f"late@{domain}", reasons=["legal threat"], hours_old=5)
    fresh = await _seed(db, database_url, sender=f"fresh@{domain}", reasons=["low confidence"], hours_old=1)
    at = _sign_in(gateway_url, await make_user(db, "reviewer"))
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["older than the 4 h SLA"]) >= 1
    assert int(metrics["pending"]) >= 2

    at.text_input(key="queue_sender").input(domain).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["id"]) == [late, fresh]  # oldest first
    assert dict(zip(table["id"], table["SLA"], strict=True)) == {late: "overdue", fresh: "ok"}
    options = at.selectbox(key="review_pick").options
    assert len(options) == 2 and all(domain in o for o in options)

    at.multiselect(key="queue_reason").select("low confidence").run()
    assert list(at.dataframe[0].value["id"]) == [fresh]
    assert at.subheader[0].value == f"Review #{fresh}"

    at.text_input(key="queue_sender").input("nobody@nowhere.invalid").run()
    assert not at.dataframe
    assert any("match the filters" in i.value for i in at.info)


def _texts(at: Any) -> str:
    return "\n".join(str(t.value) for t in at.text)


async def test_review_detail_history_trace_link_and_intent(
    gateway_url: str,  # noqa: F811
    db: Database,
    database_url: str,
    test_settings: Settings,
) -> None:
    domain = f"{uuid.uuid4().hex[:8]}.example"
    trace_id = uuid.uuid4().hex
    hostile = "<img src=x onerror=alert(1)> **VIP** [link](https://evil.example)"
    history: list[dict[str, Any]] = [
        {
            "source": "mailspine.emails",
            "ref": "email:41",
            "summary": "Called from [PHONE_1]",
            "via": "sender",
        },
        {"source": "crm.notes", "ref": "note:9", "summary": hostile, "via": None},
    ]
    vault = (test_settings.pii.vault_key.get_secret_value(), {"[PHONE_1]": ("PHONE", "+49 30 1234567")})
    kept = await _seed(
        db,
        database_url,
        sender=f"known@{domain}",
        reasons=["refund above 100"],
        hours_old=2,
        intent="refund_request",
        history=history,
        trace_id=trace_id,
        vault=vault,
    )
    older = await _seed(db, database_url, sender=f"old@{domain}", reasons=["legal threat"], hours_old=1)
    at = _sign_in(gateway_url, await make_user(db, "reviewer"))
    at.text_input(key="queue_sender").input(domain).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert dict(zip(table["id"], table["intent"], strict=True)) == {kept: "refund_request", older: ""}

    # A review made before reviews kept the history says so; an email without a trace has no link.
    at = _open(at, older)
    assert "Not recorded for this review" in _texts(at)
    assert "Trace: none recorded" in _texts(at)
    assert not at.page_link
    assert len(at.dataframe) == 1  # the queue only: no history table

    at = _open(at, kept)
    assert not at.error, [e.value for e in at.error]
    assert f"Trace id: {trace_id}" in _texts(at)
    link = at.page_link[0]
    assert link.proto.query_string == f"trace={trace_id}"
    assert link.proto.page.endswith("traces")
    rows = at.dataframe[1].value
    assert list(rows.columns) == ["source", "via", "ref", "summary"]
    assert list(rows["ref"]) == ["email:41", "note:9"]
    assert list(rows["via"]) == ["sender", ""]
    assert list(rows["summary"]) == ["Called from +49 30 1234567", hostile]  # restored; verbatim text
    assert not any("onerror" in str(m.value) for m in at.markdown)  # never rendered as markdown/HTML

    # The intent filter appears now that rows carry an intent.
    at.multiselect(key="queue_intent").select("refund_request").run()
    assert list(at.dataframe[0].value["id"]) == [kept]

    # The link's query parameter prefills the trace viewer.
    at.query_params["trace"] = trace_id
    at.switch_page("views/traces.py").run()
    assert not at.exception
    assert at.title[0].value == "Traces"
    assert at.text_input(key="trace_input").value == trace_id

    # A key that may read reviews but not traces sees the trace id, and no link to a page it lacks.
    at = _sign_in_with_key(gateway_url, await make_key(db, "review:read"))
    at.text_input(key="queue_sender").input(domain).run()
    at = _open(at, kept)
    assert f"Trace id: {trace_id}" in _texts(at)
    assert not at.page_link
