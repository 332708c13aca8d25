"""The prompt console: its dashboard page under AppTest, and an eval requested through the gateway
and run by a real procrastinate worker, against a real gateway and Postgres.

The console gets a database of its own (migrated, so the prompt files are synced): promoting a
draft there cannot change which prompts the rest of the session's tests run with.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from agent.prompts.registry import create_draft
from app import tasks
from app.db import Database
from app.queue import MAINTENANCE_QUEUE
from app.services import open_services
from app.settings import REPO_ROOT, Settings
from tests.integration.test_auth_flows import PASSWORD, bearer, login, make_user
from tests.integration.test_dashboard import _sign_in
from tests.support.databases import migrated_database
from tests.support.gateway_server import served_gateway

pytestmark = pytest.mark.integration

SUBSET_BASELINE = REPO_ROOT / "tests" / "data" / "evals" / "gate_baseline.json"


@pytest.fixture(scope="module")
def console_url(pg_server_url: str) -> Iterator[str]:
    with migrated_database(pg_server_url, "mailspine_console") as url:  # the prompt files synced
        yield url


@pytest.fixture(scope="module")
def console_settings(console_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        env="test",
        database_url=console_url,
        var_dir=REPO_ROOT / "var" / "test",
        eval_baseline=SUBSET_BASELINE,
        _env_file=None,
    )


@pytest.fixture(scope="module")
def console_gateway(console_settings: Settings, console_url: str) -> Iterator[str]:
    with served_gateway(console_settings, console_url) as url:
        yield url


@pytest.fixture
async def cdb(console_url: str) -> AsyncIterator[Database]:
    database = Database(console_url)
    yield database
    await database.dispose()


def _sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _notice(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


async def test_the_console_drafts_queues_an_eval_and_promotes_only_with_a_passing_run(
    console_gateway: str, console_url: str, cdb: Database
) -> None:
    at = _sign_in(console_gateway, await make_user(cdb, "admin"), PASSWORD)
    at.switch_page("views/prompts.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Prompts"
    at.selectbox(key="prompt_name").set_value("extract").run()
    versions = list(at.dataframe[0].value["version"])
    assert {"1.0.0", "1.1.0"} <= set(versions)
    labels = dict(zip(at.dataframe[0].value["version"], at.dataframe[0].value["labels"], strict=True))
    assert labels["1.1.0"] == "production"
    # The diff of the two released versions, as a unified diff.
    at.selectbox(key="prompt_diff_v1").set_value("1.0.0")
    at.selectbox(key="prompt_diff_v2").set_value("1.1.0").run()
    assert any(c.value.startswith("---") and "+changelog:" in c.value for c in at.code), [
        c.value for c in at.code
    ]

    # A draft edited from 1.1.0: the registry numbers it 1.1.1-draft.N and the console moves to it.
    at.selectbox(key="prompt_version").set_value("1.1.0").run()
    text_key = "draft_text_extract_1.1.0"
    content = yaml.safe_load(at.text_area(key=text_key).value)
    content["changelog"] = "Console test: same templates, new changelog."
    at.text_area(key=text_key).input(yaml.safe_dump(content, allow_unicode=True, sort_keys=False))
    at.button(key="draft_save").click().run()
    assert not at.exception, at.exception
    (saved,) = _notice(at, "success")
    assert saved.startswith("Saved extract@1.1.1-draft.") and "(a draft from 1.1.0)" in saved
    draft = at.selectbox(key="prompt_version").value
    assert draft is not None and saved.startswith(f"Saved extract@{draft} ")
    assert any(f"No eval run has used extract@{draft} yet." in t.value for t in at.text)
    assert any("cannot be promoted yet" in i.value for i in at.info)
    assert at.get("button")  # sanity: the page has its buttons
    assert not [b for b in at.button if b.key == "promote"]

    # Queue the gate: the job waits for a worker; asking again while it waits is a conflict.
    at.button(key="eval_request").click().run()
    assert any("queued (job" in s for s in _notice(at, "success")), _notice(at, "success")
    assert any("waiting for a worker" in i.value for i in at.info)
    at.button(key="eval_request").click().run()
    assert any("already queued" in w for w in _notice(at, "warning")), _notice(at, "warning")
    jobs = _sql(
        console_url,
        "SELECT id, queue_name, lock FROM procrastinate_jobs"
        " WHERE task_name = 'prompt_eval' AND args->>'version' = %s",
        draft,
    )
    assert [(q, lock) for _, q, lock in jobs] == [(MAINTENANCE_QUEUE, "prompt-eval")]
    assert _sql(
        console_url,
        "SELECT actor FROM audit_log WHERE action = 'prompt.eval_requested' AND subject_id = %s",
        f"extract@{draft}",
    )

    # A passing run of the draft (as the worker's gate would store it) makes it promotable.
    gate = {"passed": True, "regressions": [], "hard_failures": [], "metrics": [], "runs": []}
    (run_id,) = _sql(
        console_url,
        "INSERT INTO eval_runs (started_at, finished_at, dataset_path, dataset_sha256, prompts, provider,"
        " model, metrics, cases, passed_gate, gate_report) VALUES (now(), now(), 'golden', %s, %s::jsonb,"
        " 'offline', 'offline', '{\"pass_rate\": 0.5}'::jsonb, '[]'::jsonb, true, %s::jsonb) RETURNING id",
        "0" * 64,
        json.dumps({"extract": draft, "plan": "1.1.0"}),
        json.dumps(gate),
    )[0]
    at.button(key="eval_refresh").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[1].value["gate"]) == ["passed"]
    assert any(f"Gate verdict for eval run {run_id}: passed" in c.value for c in at.code)
    at.selectbox(key="promote_label").set_value("staging").run()
    at.button(key="promote").click().run()
    assert not at.exception, at.exception
    assert f"extract staging now points at {draft} (was none)." in _notice(at, "success")
    assert _sql(
        console_url, "SELECT version FROM prompt_labels WHERE name = 'extract' AND label = 'staging'"
    ) == [(draft,)]

    at.button(key="rollback").click().run()
    assert f"extract staging rolled back to nothing (was {draft})." in _notice(at, "success")
    assert not _sql(console_url, "SELECT 1 FROM prompt_labels WHERE name = 'extract' AND label = 'staging'")
    _sql(console_url, "DELETE FROM procrastinate_jobs WHERE id = %s", jobs[0][0])  # no worker runs it here


async def test_reviewers_and_auditors_read_prompts_but_cannot_change_them(
    console_gateway: str, cdb: Database
) -> None:
    async with httpx.AsyncClient(base_url=console_gateway) as client:
        for role in ("reviewer", "auditor"):
            token = (await login(client, await make_user(cdb, role)))["access_token"]
            assert (
                await client.get("/v1/prompts/extract/1.1.0/evals", headers=bearer(token))
            ).status_code == 200
            queued = await client.post("/v1/prompts/extract/1.1.0/evals", headers=bearer(token))
            assert queued.status_code == 403, queued.text


async def test_an_eval_requested_through_the_gateway_runs_on_a_worker_and_the_draft_can_be_promoted(
    console_gateway: str, console_settings: Settings, console_url: str, cdb: Database
) -> None:
    async with cdb.transaction() as session:
        draft = await create_draft(
            session,
            name="plan",
            base_version="1.1.0",
            content={**_released(console_url, "plan", "1.1.0"), "changelog": "worker test"},
            actor="test",
        )
    async with httpx.AsyncClient(base_url=console_gateway, timeout=30) as client:
        admin = bearer((await login(client, await make_user(cdb, "admin")))["access_token"])
        queued = await client.post(f"/v1/prompts/plan/{draft}/evals", headers=admin)
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        missing = await client.post("/v1/prompts/plan/9.9.9/evals", headers=admin)
        assert missing.status_code == 404, missing.text
        before = (await client.get(f"/v1/prompts/plan/{draft}/evals", headers=admin)).json()
        assert before["runs"] == [] and [(j["id"], j["status"]) for j in before["jobs"]] == [(job_id, "todo")]

        # A real worker's queue on the maintenance queue, until it is empty (the gate is a child
        # process: `mailspine eval gate` on the 20-case subset baseline, MAILSPINE_EVAL_BASELINE).
        async with open_services(console_settings, database_url=console_url) as services:
            tasks.bind_services(services)
            try:
                async with tasks.open_queue(console_url) as app:
                    await app.run_worker_async(
                        queues=[MAINTENANCE_QUEUE],
                        wait=False,
                        install_signal_handlers=False,
                        delete_jobs="successful",
                    )
            finally:
                tasks.bind_services(None)

        after = (await client.get(f"/v1/prompts/plan/{draft}/evals", headers=admin)).json()
        assert after["jobs"] == [], after["jobs"]  # it succeeded (successful jobs are deleted)
        (run,) = after["runs"]
        assert run["prompts"]["plan"] == draft and run["passed_gate"] is True, run
        detail = (await client.get(f"/v1/evals/runs/{run['id']}", headers=admin)).json()
        assert detail["cases"] == 20 and detail["gate_report"]["passed"] is True

        promoted = await client.post(
            "/v1/prompts/plan/promote",
            headers=admin,
            json={"version": draft, "label": "staging", "eval_run_id": run["id"]},
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["version"] == draft


def _released(url: str, name: str, version: str) -> dict[str, object]:
    (row,) = _sql(url, "SELECT content FROM prompt_versions WHERE name = %s AND version = %s", name, version)
    content = row[0]
    assert isinstance(content, dict)
    return {k: v for k, v in content.items() if k != "version"}
