"""Online evaluation and shadow runs in the real stack: worker, API, the reference CRM over HTTP
and an SMTP server, with every finished run sampled and a shadow candidate (plan@1.0.0)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import REPO_ROOT
from evals.online_checks import review_signal
from evals.shadow import compare
from infra.mail.smtp_sink import SmtpSink
from tests.integration.test_pipeline import LOGS, email_status, settle, wait_for
from tests.support.stack import DEMO_MAILBOX, Stack, running_stack

pytestmark = pytest.mark.integration
EMAILS = (
    "01-order-status-tent.eml",
    "06-refund-large-eur.eml",
    "25-fr-order-status.eml",
    "18-newsletter-industry.eml",
)
RULES = {"schema_valid", "policy_consistent", "reply_no_foreign_data", "reply_language", "judge"}
CANDIDATE = "plan@1.0.0"


@pytest.fixture(scope="module")
def online_stack(
    pg_server_url: str, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[int], SmtpSink]]:
    smtp_sink.reset()
    mailbox = tmp_path_factory.mktemp("online-mailbox")
    for name in EMAILS:
        shutil.copy(DEMO_MAILBOX / name, mailbox / name)
    smtp = {
        "host": smtp_sink.host,
        "port": smtp_sink.port,
        "security": "none",
        "username": smtp_sink.username,
        "password": smtp_sink.password,
        "from_address": "support@mailspine.test",
    }
    env = {
        "MAILSPINE_SMTP": json.dumps(smtp),
        "MAILSPINE_ONLINE__SAMPLE_RATE": "1",
        "MAILSPINE_ONLINE__SHADOW_CANDIDATE": CANDIDATE,
        "MAILSPINE_ONLINE__SHADOW_SAMPLE_RATE": "1",
    }
    with running_stack(pg_server_url, LOGS / "online", env=env) as stack:
        stack.start_worker()
        stack.start_api()
        ids = stack.ingest(Path(mailbox))
        settle(stack, ids)
        yield stack, ids, smtp_sink


def _idle(stack: Stack) -> bool:
    return not stack.sql("SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")


def _done(stack: Stack, ids: list[int]) -> list[int]:
    return [i for (i,) in stack.sql("SELECT id FROM emails WHERE id = ANY(%s) AND status = 'done'", ids)]


def test_each_finished_email_is_scored_by_the_job_with_its_trace_id(
    online_stack: tuple[Stack, list[int], SmtpSink],
) -> None:
    stack, ids, _ = online_stack
    done = _done(stack, ids)
    assert len(done) >= 2, stack.sql("SELECT id, status FROM emails WHERE id = ANY(%s)", ids)
    wait_for(lambda: _idle(stack), timeout_s=120, what="online_eval jobs")
    for email_id in done:
        rows = stack.sql(
            "SELECT s.name, s.value, s.details, s.trace_id, r.trace_id FROM online_scores s "
            "JOIN runs r ON r.id = s.run_id WHERE s.email_id = %s",
            email_id,
        )
        by_name = {name: (value, details) for name, value, details, _, _ in rows}
        assert set(by_name) >= RULES, (email_id, by_name)
        assert all(trace and trace == run_trace for _, _, _, trace, run_trace in rows)
        assert by_name["schema_valid"][0] == 1.0 and by_name["policy_consistent"][0] == 1.0
        judge_value, judge_details = by_name["judge"]
        assert judge_value is None and judge_details == {"skipped": "offline model: no judge"}
    # An email still waiting for review is not finished: nothing scored yet.
    waiting = [i for (i,) in stack.sql("SELECT id FROM emails WHERE id = ANY(%s) AND status = 'review'", ids)]
    assert waiting and not stack.sql("SELECT 1 FROM online_scores WHERE email_id = ANY(%s)", waiting)


def test_a_reviewer_edit_records_the_edit_signal(online_stack: tuple[Stack, list[int], SmtpSink]) -> None:
    stack, ids, _ = online_stack
    [review] = [r for r in stack.api.get("/v1/reviews").json() if r["email_id"] in ids]
    plan = review["payload"]["plan"]
    [reply] = [a for a in plan["actions"] if a["kind"] == "draft_reply"]
    reply["body"] = reply["body"].replace("two business days", "three business days") + "\n\nP.S. Sorry!"
    answer = stack.api.post(
        f"/v1/reviews/{review['id']}/decision",
        json={"decision": "approve", "payload_hash": review["payload_hash"], "plan": plan},
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: email_status(stack, review["email_id"]) == "done", what="the edited plan to run")

    def signal() -> list[tuple[float, dict[str, str]]]:
        query = "SELECT value, details FROM online_scores WHERE email_id = %s AND name = 'review'"
        return stack.sql(query, review["email_id"])  # type: ignore[return-value]

    wait_for(lambda: bool(signal()), what="the review signal")
    [(value, details)] = signal()
    ((proposed, decided),) = stack.sql(
        "SELECT payload, decided_payload FROM reviews WHERE id = %s", review["id"]
    )
    expected = review_signal("approved", proposed["plan"], decided["plan"])
    assert details == {"decision": "edited", "compared": "reply"}
    assert value == expected.value and 0.5 < value < 1.0


def test_shadow_runs_compare_and_reach_neither_crm_nor_smtp(
    online_stack: tuple[Stack, list[int], SmtpSink],
) -> None:
    stack, ids, sink = online_stack
    done = _done(stack, ids)

    def shadowed() -> list[int]:
        rows = stack.sql("SELECT email_id FROM shadow_runs WHERE email_id = ANY(%s)", done)
        return sorted(i for (i,) in rows)

    wait_for(lambda: shadowed() == sorted(done) and _idle(stack), timeout_s=120, what="shadow runs")
    rows = stack.sql(
        "SELECT email_id, candidate, production_prompts, candidate_prompts, production_output, "
        "candidate_output, intent_agrees, route_agrees, actions_agree, field_diffs "
        "FROM shadow_runs WHERE email_id = ANY(%s)",
        done,
    )
    for email_id, candidate, prod_prompts, cand_prompts, prod_out, cand_out, *agree, diffs in rows:
        kept = dict(
            stack.sql(
                "SELECT name, version FROM prompt_thread_versions WHERE thread_id = %s", f"email-{email_id}"
            )
        )
        assert candidate == CANDIDATE and cand_prompts == {**prod_prompts, "plan": "1.0.0"}
        assert prod_prompts["plan"] == kept["plan"] != "1.0.0"
        assert cand_out["route"] in ("auto", "review", "ignore") and cand_out["intent"]
        stored = dict(zip(("intent_agrees", "route_agrees", "actions_agree"), agree, strict=True))
        assert {**stored, "field_diffs": diffs} == compare(prod_out, cand_out)
        # The candidate really ran the models, in its own thread, whose checkpoints are gone now.
        assert (
            stack.sql("SELECT count(*) FROM model_calls WHERE thread_id = %s", f"shadow:email-{email_id}")[0][
                0
            ]
            >= 2
        )
    assert stack.sql("SELECT count(*) FROM checkpoints WHERE thread_id LIKE 'shadow:%%'")[0][0] == 0
    # Nothing of a shadow thread in the ledger, the drafts or the reviews; the real email keeps one review.
    for table in ("side_effects", "outbound_messages", "reviews"):
        assert stack.sql(f"SELECT count(*) FROM {table} WHERE thread_id LIKE 'shadow:%%'")[0][0] == 0
    # The CRM (over HTTP) holds exactly production's writes: one idempotency record per succeeded
    # CRM write in the ledger and one note per succeeded crm_add_note.
    crm_writes = stack.sql(
        "SELECT count(*) FROM side_effects WHERE action LIKE 'crm_%%' AND status = 'succeeded'"
    )
    notes = stack.sql(
        "SELECT count(*) FROM side_effects WHERE action = 'crm_add_note' AND status = 'succeeded'"
    )
    assert crm_writes[0][0] >= 4
    assert stack.sql("SELECT count(*) FROM crm.idempotency_keys")[0][0] == crm_writes[0][0]
    assert stack.sql("SELECT count(*) FROM crm.notes")[0][0] == notes[0][0]
    # SMTP received exactly production's sends, each a production draft.
    sent = {m for (m,) in stack.sql("SELECT message_id FROM outbound_messages WHERE status = 'sent'")}
    received = [re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", m.data) for m in sink.messages]
    assert len(sent) >= 2 and sorted(r.group(1).decode() for r in received if r) == sorted(sent)
    assert len(received) == len(sent)


def test_the_cli_shows_rolling_means_alarms_and_shadow_agreement(
    online_stack: tuple[Stack, list[int], SmtpSink],
) -> None:
    stack, _, _ = online_stack
    wait_for(lambda: _idle(stack), timeout_s=120, what="queued jobs")
    env = {**os.environ, "DATABASE_URL": stack.url, "MAILSPINE_ENV": "test", "MAILSPINE_ONLINE__WINDOW": "3"}
    env.pop("MAILSPINE_ONLINE__SHADOW_CANDIDATE", None)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "eval", "online", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    report = json.loads(cli("--json"))
    rolling = {r["name"]: r for r in report["rolling"]}
    scored = stack.sql("SELECT count(*) FROM online_scores WHERE name = 'schema_valid' AND value IS NOT NULL")
    assert rolling["schema_valid"]["count"] == min(3, scored[0][0]) and rolling["schema_valid"]["mean"] == 1.0
    assert rolling["judge"]["mean"] is None and rolling["judge"]["count"] == 0  # skipped scores do not count
    assert report["open_alarms"] == [] and report["window"] == 3
    [shadow] = report["shadow"]
    shadowed = stack.sql("SELECT count(*) FROM shadow_runs")[0][0]
    assert shadow["candidate"] == CANDIDATE and shadow["runs"] == shadowed >= 2
    assert 0.0 <= shadow["route_agreement"] <= 1.0
    text = cli("--limit", "5")
    assert "rolling means" in text and "schema_valid" in text and CANDIDATE in text
    assert len(json.loads(cli("--json", "--limit", "5"))["recent_scores"]) == 5
