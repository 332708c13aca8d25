"""The dashboard's page registry, the review queue's SLA and filters, and the signed-out app (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from app.settings import REPO_ROOT, Settings
from dashboard import review_queue
from dashboard.nav import DECIDE_SCOPE, PAGES, SIGN_IN, Page, visible_pages
from dashboard.review_queue import QueueFilter
from gateway.auth_scopes import ROLE_SCOPES

APP = str(REPO_ROOT / "dashboard" / "app.py")
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
# The scopes of each role, as GET /v1/auth/me reports them.
REVIEWER, AUDITOR, ADMIN = (set(ROLE_SCOPES[role]) for role in ("reviewer", "auditor", "admin"))


def _titles(scopes: set[str]) -> list[str]:
    return [page.title for page in visible_pages(scopes)]


def test_pages_follow_the_scopes() -> None:
    assert _titles(ADMIN) == [p.title for p in PAGES]
    assert _titles(REVIEWER) == _titles(AUDITOR) == [p.title for p in PAGES if p.title != "Prompts"]
    assert _titles({"review:read"}) == ["Review queue"]
    assert _titles({"emails:read"}) == ["Runs", "Traces"]  # the Emails page also needs stats:read
    assert _titles({"emails:read", "stats:read"})[0] == "Emails"
    assert _titles({"stats:read"}) == ["Evals", "Quality and cost"]
    assert _titles({"ingest"}) == [] and _titles(set()) == []
    assert DECIDE_SCOPE in REVIEWER and DECIDE_SCOPE not in AUDITOR


def test_a_new_page_is_one_entry() -> None:
    extra = Page("views/extra.py", "Extra", ":material/timeline:", frozenset({"extra:read"}))
    pages = (*PAGES, extra)
    assert [p.title for p in visible_pages({*REVIEWER, "extra:read"}, pages)][-1] == "Extra"
    assert "Extra" not in [p.title for p in visible_pages(REVIEWER, pages)]


def test_every_page_module_exists() -> None:
    for page in (SIGN_IN, *PAGES):
        assert (REPO_ROOT / "dashboard" / page.path).is_file(), page.path
    assert len({page.path for page in (SIGN_IN, *PAGES)}) == len(PAGES) + 1


def _review(rid: int, hours_old: float, sender: str, reasons: list[str], intent: str | None = None) -> dict:  # type: ignore[type-arg]
    row = {
        "id": rid,
        "created_at": (NOW - timedelta(hours=hours_old)).isoformat(),
        "sender": sender,
        "reasons": reasons,
    }
    return row | ({"intent": intent} if intent else {})


def test_overdue_against_the_sla() -> None:
    assert review_queue.overdue(_review(1, 4.5, "a@x", []), sla_hours=4, now=NOW)
    assert not review_queue.overdue(_review(2, 3.9, "a@x", []), sla_hours=4, now=NOW)
    naive = {"created_at": "2026-01-10T06:00:00"}  # no zone: read as UTC
    assert review_queue.age_hours(naive, NOW) == 6.0
    assert review_queue.age_hours(_review(3, -1, "a@x", []), NOW) == 0.0  # a clock ahead is not negative


def test_filters_by_intent_sender_and_reason() -> None:
    rows = [
        _review(1, 1, "Anna@Shop.example", ["refund above 100"], "refund"),
        _review(2, 1, "bob@law.example", ["legal threat", "low confidence"], "complaint"),
        _review(3, 1, "carl@shop.example", ["new external recipient"]),
    ]
    ids = lambda where: [r["id"] for r in review_queue.apply(rows, where)]  # noqa: E731
    assert ids(QueueFilter()) == [1, 2, 3]
    assert ids(QueueFilter(sender="shop.EXAMPLE")) == [1, 3]
    assert ids(QueueFilter(sender="  ")) == [1, 2, 3]
    assert ids(QueueFilter(reasons=frozenset({"low confidence", "refund above 100"}))) == [1, 2]
    assert ids(QueueFilter(intents=frozenset({"complaint"}))) == [2]
    assert ids(QueueFilter(intents=frozenset({"refund"}), sender="bob")) == []
    intents, reasons = review_queue.choices(rows)
    assert intents == ["complaint", "refund"]
    assert reasons == ["legal threat", "low confidence", "new external recipient", "refund above 100"]


def test_sla_setting_is_validated() -> None:
    assert Settings(_env_file=None).review_sla_hours == 4.0  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(review_sla_hours=0, _env_file=None)  # type: ignore[call-arg]


def test_signed_out_app_shows_only_the_sign_in_page() -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Sign in"
    for key in ("signin_url", "signin_email", "signin_password"):
        assert at.text_input(key=key) is not None
    assert at.button(key="signin_submit").label == "Sign in"
    assert not [b for b in at.button if b.key == "sign_out"]
    for page in PAGES:  # no other page is registered before sign-in
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page.path)
