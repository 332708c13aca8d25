"""The review flow in a real browser: Debian's headless Chromium, driven by Playwright.

A real stack (CRM, worker and API processes, its own database) processes emails that need review;
the dashboard runs as ``streamlit run`` on a free port. In Chromium a reviewer signs in with e-mail
and password, opens a pending review, edits the reply, approves, and the test polls the API until
the email's run is done. A screenshot of every page goes to ``var/test/artifacts/screenshots/``.

Only the system browser is used (``/usr/bin/chromium``), never a downloaded one. Without it the
test is skipped, except under ``CI``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.processes import streamlit_command
from app.settings import REPO_ROOT, Settings
from tests.integration.test_pipeline import settle
from tests.support.stack import DEMO_MAILBOX, REVIEWER, Stack, free_port, running_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = REPO_ROOT / "var" / "test" / "artifacts" / "screenshots"
LOGS = REPO_ROOT / "var" / "test" / "logs" / "browser"
# Demo emails that the review policy stops: a large refund, a legal threat, a cancellation.
NEEDS_REVIEW = ["06-refund-large-eur.eml", "10-complaint-legal-lawyer.eml", "08-cancel-order.eml"]
STEP_MS = 60_000  # generous: a Streamlit rerun on a loaded CI machine
EDITED = "Hello, this reply was edited in the browser test. Your request is being handled."


def _require_browser() -> None:
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing and in_ci:
        pytest.fail(f"browser test under CI, but missing: {'; '.join(missing)}")
    if missing:
        pytest.skip(f"no browser for the dashboard test: missing {'; '.join(missing)}")


@pytest.fixture(scope="module")
def stack(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _require_browser()
    mailbox = tmp_path_factory.mktemp("browser-mailbox")
    for name in NEEDS_REVIEW:
        shutil.copy(DEMO_MAILBOX / name, mailbox / name)
    with running_stack(pg_server_url, LOGS) as s:
        s.start_worker()
        s.start_api()
        ids = s.ingest(mailbox)
        counts = settle(s, ids)
        assert counts.get("review", 0) >= 1, counts
        yield s


@pytest.fixture(scope="module")
def dashboard_url(stack: Stack) -> str:
    port = free_port()
    # The dashboard process finds the API through MAILSPINE_API_PORT in the stack's environment.
    command = streamlit_command(Settings(dashboard_port=port, api_host="127.0.0.1", _env_file=None))  # type: ignore[call-arg]
    stack.group.start("dashboard", command)
    stack.group.wait_http("dashboard", f"http://127.0.0.1:{port}/_stcore/health", timeout_s=120)
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def page(dashboard_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1600})
            tab.set_default_timeout(STEP_MS)
            yield tab
        finally:
            browser.close()


def _idle(page: Any) -> None:
    """Wait until Streamlit has finished its current script run (the app root says so)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=STEP_MS)


def _shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _pending_with_reply(stack: Stack) -> dict[str, Any]:
    with stack.api as api:
        answer = api.get("/v1/reviews", params={"status": "pending"})
    assert answer.status_code == 200, answer.text
    for review in answer.json():
        if any(a["kind"] == "draft_reply" for a in review["payload"]["plan"]["actions"]):
            return dict(review)
    raise AssertionError(f"no pending review drafts a reply: {answer.json()}")


def _email_status(stack: Stack, email_id: int) -> str | None:
    with stack.api as api:
        answer = api.get("/v1/emails", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return next((e["status"] for e in answer.json() if e["id"] == email_id), None)


def test_sign_in_edit_approve_and_the_run_completes(stack: Stack, dashboard_url: str, page: Any) -> None:
    from playwright.sync_api import expect

    review = _pending_with_reply(stack)
    page.goto(dashboard_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _idle(page)
    page.get_by_label("E-mail").fill(REVIEWER)
    page.get_by_label("Password", exact=True).fill(stack.reviewer_password)
    _shot(page, "01-sign-in")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    _idle(page)
    expect(page.get_by_text(f"Signed in as {REVIEWER} (reviewer)")).to_be_visible()
    _shot(page, "02-review-queue")

    # Open the review that drafts a reply (the select box lists "#<id> · sender · subject").
    page.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=f"#{review['id']} ·").click()
    expect(page.get_by_role("heading", name=f"Review #{review['id']}")).to_be_visible()
    _idle(page)
    _shot(page, "03-review-detail")
    body = page.get_by_label("Reply body (you may edit it before approving)").first
    body.fill(EDITED)
    body.press("Control+Enter")  # commits the text area's value (a rerun)
    _idle(page)
    expect(body).to_have_value(EDITED)
    _shot(page, "04-reply-edited")

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"Review #{review['id']} approved (with your edits)")).to_be_visible()
    _idle(page)
    _shot(page, "05-review-approved")

    deadline = time.monotonic() + 180
    while (status := _email_status(stack, review["email_id"])) != "done":
        assert status in ("review", "processing", "queued"), status
        assert time.monotonic() < deadline, f"email {review['email_id']} still {status}"
        stack.group.check_alive()
        time.sleep(0.5)
    decided = stack.sql("SELECT status, decided_payload, reviewer FROM reviews WHERE id = %s", review["id"])
    status, payload, who = decided[0]
    assert (status, who) == ("approved", REVIEWER)
    bodies = [a["body"] for a in payload["plan"]["actions"] if a["kind"] == "draft_reply"]
    assert bodies[0] == EDITED

    # The Emails page shows the finished run in its counts (read after the API said "done").
    with stack.api as api:
        done = api.get("/v1/stats").json()["emails"]["done"]
    page.get_by_role("link", name="Emails").click()
    expect(page.get_by_role("heading", name="Emails")).to_be_visible()
    _idle(page)
    done_metric = page.get_by_test_id("stMetric").filter(has_text="done")
    expect(done_metric.get_by_test_id("stMetricValue")).to_have_text(str(done))
    _shot(page, "06-emails")


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI, but missing: /nonexistent/chromium"):
        _require_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="missing /nonexistent/chromium"):
        _require_browser()
