"""The prompt registry against Postgres: sync, promotion gate, history and rollback, drafts,
sticky per-thread resolution. Its own database: label changes here must not reach other tests."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

import agent.prompts
from agent.prompts import load_prompt, pinned_prompts
from agent.prompts.registry import (
    PromotionRefused,
    PromptFileEdited,
    PromptRegistryError,
    canary_bucket,
    create_draft,
    diff_versions,
    promote,
    read_prompt_files,
    resolve_thread_prompts,
    rollback,
    sync_prompts,
)
from app.db import Database, drop_database, fresh_database
from app.migrate import upgrade
from app.repo import eval_runs
from app.repo import prompts as repo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry_url(pg_server_url: str) -> Iterator[str]:
    name = f"mailspine_prompts_{uuid.uuid4().hex[:8]}"
    url = fresh_database(pg_server_url, name)
    upgrade(url)  # migrates and syncs the prompt files
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
async def rdb(registry_url: str) -> AsyncIterator[Database]:
    database = Database(registry_url)
    yield database
    await database.dispose()


async def eval_run(db: Database, prompts: dict[str, str], passed_gate: bool | None) -> int:
    """An eval run as ``mailspine eval run`` stores it, judged as ``mailspine eval gate`` would."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        row = await eval_runs.record_eval_run(
            session,
            started_at=now,
            finished_at=now,
            dataset_path="evals/datasets/golden.jsonl",
            dataset_sha256="0" * 64,
            prompts=prompts,
            provider="offline",
            model="offline",
            metrics={},
            cases=[],
        )
        row.passed_gate = passed_gate
        return row.id


def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def latest_file(name: str) -> str:
    from agent.prompts.registry import version_key

    return max((v for n, v in read_prompt_files() if n == name), key=version_key)


async def test_a_fresh_database_has_every_file_and_production_on_the_latest(
    rdb: Database, registry_url: str
) -> None:
    stored = {(n, v): s for n, v, s in sql(registry_url, "SELECT name, version, source FROM prompt_versions")}
    assert set(read_prompt_files()) <= set(stored)
    assert {s for (n, v), s in stored.items() if (n, v) in read_prompt_files()} == {"file"}
    labels = dict(sql(registry_url, "SELECT name, version FROM prompt_labels WHERE label = 'production'"))
    assert labels["extract"] == latest_file("extract") and labels["plan"] == latest_file("plan")
    async with rdb.transaction() as session:  # a second sync adds nothing
        report = await sync_prompts(session)
    assert report.added == [] and report.labelled == []


async def test_sync_refuses_a_released_file_edited_in_place(
    rdb: Database, registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "prompts"
    shutil.copytree(agent.prompts.PROMPTS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(agent.prompts, "PROMPTS_DIR", copy)
    released = copy / "extract" / "1.0.0.yaml"
    # Comments and layout are not an edit: the parsed content is what is hashed.
    released.write_text("# reviewed\n" + released.read_text(encoding="utf-8"), encoding="utf-8")
    (copy / "plan" / "9.0.0.yaml").write_text(
        (copy / "plan" / "1.1.0.yaml")
        .read_text(encoding="utf-8")
        .replace("version: 1.1.0", "version: 9.0.0"),
        encoding="utf-8",
    )
    text = released.read_text(encoding="utf-8")
    released.write_text(text.replace("Initial extraction prompt.", "Initial extraction prompt, tuned."))
    before = sql(registry_url, "SELECT count(*) FROM prompt_versions")
    async with rdb.sessions() as session:
        with pytest.raises(PromptFileEdited, match=r"extract@1\.0\.0") as raised:
            async with session.begin():
                await sync_prompts(session)
    assert "new version" in str(raised.value)
    assert sql(registry_url, "SELECT count(*) FROM prompt_versions") == before  # nothing written
    released.write_text(text, encoding="utf-8")  # restored: the new file version syncs
    async with rdb.sessions() as session:
        report = await sync_prompts(session)
        assert report.added == ["plan@9.0.0"] and report.labelled == []  # production does not move
        await session.rollback()


async def test_promotion_needs_a_passing_eval_run_of_that_exact_version(
    rdb: Database, registry_url: str
) -> None:
    production = latest_file("extract")
    failing = await eval_run(rdb, {"extract": "1.0.0", "plan": "1.1.0"}, passed_gate=False)
    unjudged = await eval_run(rdb, {"extract": "1.0.0", "plan": "1.1.0"}, passed_gate=None)
    other = await eval_run(rdb, {"extract": production, "plan": "1.1.0"}, passed_gate=True)
    cases = [
        (10**9, "no eval run"),
        (failing, "failed the gate"),
        (unjudged, "has not been judged"),
        (other, f"ran extract@{production}, not extract@1.0.0"),
    ]
    for run_id, why in cases:
        async with rdb.transaction() as session:
            with pytest.raises(PromotionRefused, match=why):
                await promote(
                    session,
                    name="extract",
                    version="1.0.0",
                    label="production",
                    eval_run_id=run_id,
                    actor="t",
                )
    async with rdb.transaction() as session:
        with pytest.raises(PromptRegistryError, match=r"no version '7\.0\.0'"):
            await promote(
                session, name="extract", version="7.0.0", label="production", eval_run_id=other, actor="t"
            )
        with pytest.raises(PromptRegistryError, match="percentage"):
            await promote(
                session, name="extract", version="1.0.0", label="canary", eval_run_id=other, actor="t"
            )
    labels = sql(
        registry_url, "SELECT version FROM prompt_labels WHERE name = 'extract' AND label = 'production'"
    )
    assert labels == [(production,)]
    assert sql(registry_url, "SELECT count(*) FROM audit_log WHERE action = 'prompt.promote'") == [(0,)]


async def test_promote_then_roll_back_step_by_step_all_audited(rdb: Database, registry_url: str) -> None:
    production = latest_file("plan")
    run = await eval_run(rdb, {"extract": "1.1.0", "plan": "1.0.0"}, passed_gate=True)
    async with rdb.transaction() as session:
        previous = await promote(
            session, name="plan", version="1.0.0", label="production", eval_run_id=run, actor="alice"
        )
        await promote(
            session, name="plan", version="1.0.0", label="canary", eval_run_id=run, actor="bob", percentage=25
        )
    assert previous == production
    assert sorted(
        sql(registry_url, "SELECT label, version, percentage FROM prompt_labels WHERE name = 'plan'")
    ) == [
        ("canary", "1.0.0", 25),
        ("production", "1.0.0", None),
    ]
    async with rdb.transaction() as session:
        assert await rollback(session, name="plan", label="production", actor="carol") == production
        assert await rollback(session, name="plan", label="canary", actor="carol") is None  # removed
    async with rdb.transaction() as session:
        with pytest.raises(PromptRegistryError, match="no earlier version"):
            await rollback(session, name="plan", label="production", actor="carol")
        with pytest.raises(PromptRegistryError, match="no canary label"):
            await rollback(session, name="plan", label="canary", actor="carol")
    history = sql(
        registry_url,
        "SELECT label, version, action, actor, eval_run_id FROM prompt_label_history "
        "WHERE name = 'plan' ORDER BY id",
    )
    assert history == [
        ("production", production, "sync", "sync", None),
        ("production", "1.0.0", "promote", "alice", run),
        ("canary", "1.0.0", "promote", "bob", run),
        ("production", production, "rollback", "carol", None),
        ("canary", None, "rollback", "carol", None),
    ]
    audit = sql(
        registry_url,
        "SELECT action, actor, subject_id, details->>'label', details->>'eval_run_id', "
        "details->>'content_sha256' FROM audit_log WHERE subject_type = 'prompt' ORDER BY id",
    )
    sha = {
        v: s for v, s in sql(registry_url, "SELECT version, sha256 FROM prompt_versions WHERE name = 'plan'")
    }
    assert audit == [
        ("prompt.promote", "alice", "plan@1.0.0", "production", str(run), sha["1.0.0"]),
        ("prompt.promote", "bob", "plan@1.0.0", "canary", str(run), sha["1.0.0"]),
        ("prompt.rollback", "carol", f"plan@{production}", "production", None, sha[production]),
        ("prompt.rollback", "carol", "plan@1.0.0", "canary", None, None),
    ]


async def test_drafts_are_new_versions_and_nothing_is_overwritten(rdb: Database, registry_url: str) -> None:
    base = read_prompt_files()[("extract", "1.1.0")]
    edited = {**base, "changelog": "Shorter system prompt.", "version": "1.1.0"}
    edited["messages"] = [{"role": "system", "template": "Extract the facts.\n"}, base["messages"][1]]
    async with rdb.transaction() as session:
        first = await create_draft(
            session, name="extract", base_version="1.1.0", content=edited, actor="dana"
        )
        again = {**edited, "changelog": "Shorter still."}
        second = await create_draft(
            session, name="extract", base_version="1.1.0", content=again, actor="dana"
        )
        third = await create_draft(
            session, name="extract", base_version=second, content={**again, "owner": "ops"}, actor="dana"
        )
    assert (first, second, third) == ("1.1.1-draft.1", "1.1.1-draft.2", "1.1.1-draft.3")
    rows = sql(
        registry_url,
        "SELECT version, source, derived_from, created_by, content->>'changelog' FROM prompt_versions "
        "WHERE name = 'extract' AND source = 'draft' ORDER BY version",
    )
    assert rows == [
        (first, "draft", "1.1.0", "dana", "Shorter system prompt."),
        (second, "draft", "1.1.0", "dana", "Shorter still."),
        (third, "draft", second, "dana", "Shorter still."),
    ]
    async with rdb.transaction() as session:
        with pytest.raises(PromptRegistryError, match="nothing to draft"):
            await create_draft(session, name="extract", base_version="1.1.0", content=base, actor="dana")
        bad = {**edited, "messages": [{"role": "user", "template": "{email_block} {secret_sauce}"}]}
        with pytest.raises(PromptRegistryError, match="secret_sauce"):
            await create_draft(session, name="extract", base_version="1.1.0", content=bad, actor="dana")
        with pytest.raises(PromptRegistryError, match="input variables"):
            await create_draft(
                session,
                name="extract",
                base_version="1.1.0",
                content={**edited, "input_variables": ["email_block", "tone"]},
                actor="dana",
            )
        with pytest.raises(PromptRegistryError, match="not 'extract'"):
            await create_draft(
                session,
                name="extract",
                base_version="1.1.0",
                content={**edited, "name": "plan"},
                actor="dana",
            )
        patch = await diff_versions(session, name="extract", old="1.1.0", new=first)
    assert (
        "-changelog:" in patch
        and "+changelog: Shorter system prompt." in patch
        and "+    Extract the facts." in patch
    )
    with (
        psycopg.connect(registry_url) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("UPDATE prompt_versions SET content = '{}' WHERE version = %s", (first,))
    drafts = sql(
        registry_url, "SELECT count(*) FROM audit_log WHERE action = 'prompt.draft' AND actor = 'dana'"
    )
    assert drafts == [(3,)]


async def test_a_thread_keeps_its_versions_when_labels_change(rdb: Database) -> None:
    thread = next(f"thread-{i}" for i in range(1000) if canary_bucket(f"thread-{i}", "extract") >= 50)
    newcomer = next(f"thread-{i}" for i in range(1000) if canary_bucket(f"thread-{i}", "extract") < 50)
    run = await eval_run(rdb, {"extract": "1.0.0", "plan": "1.1.0"}, passed_gate=True)
    async with rdb.transaction() as session:
        before = await resolve_thread_prompts(session, thread_id=thread)
        await promote(
            session,
            name="extract",
            version="1.0.0",
            label="canary",
            eval_run_id=run,
            actor="t",
            percentage=100,
        )
    async with rdb.transaction() as session:
        assert await resolve_thread_prompts(session, thread_id=thread) == before  # kept: started earlier
        assert (await resolve_thread_prompts(session, thread_id=newcomer))["extract"] == "1.0.0"
    with pinned_prompts({"extract": "1.1.0"}):  # an explicit pin wins over the thread's versions
        async with rdb.transaction() as session:
            assert (await resolve_thread_prompts(session, thread_id=newcomer))["extract"] == "1.1.0"
    async with rdb.transaction() as session:
        await rollback(session, name="extract", label="canary", actor="t")


async def test_a_draft_on_canary_reaches_its_threads_from_the_database(rdb: Database) -> None:
    base = read_prompt_files()[("plan", "1.1.0")]
    content = {**base, "changelog": "Canary draft.", "owner": "canary-owner"}
    async with rdb.transaction() as session:
        draft = await create_draft(session, name="plan", base_version="1.1.0", content=content, actor="t")
    run = await eval_run(rdb, {"extract": "1.1.0", "plan": draft}, passed_gate=True)
    async with rdb.transaction() as session:
        await promote(
            session, name="plan", version=draft, label="canary", eval_run_id=run, actor="t", percentage=100
        )
    thread = f"thread-draft-{uuid.uuid4().hex[:6]}"
    async with rdb.transaction() as session:
        pins = await resolve_thread_prompts(session, thread_id=thread)
        await rollback(session, name="plan", label="canary", actor="t")
    assert pins["plan"] == draft
    with pinned_prompts(pins):  # no file holds the draft: it was loaded into this process
        assert load_prompt("plan").owner == "canary-owner"
    assert await _kept(rdb, thread) == pins


async def _kept(db: Database, thread: str) -> dict[str, str]:
    async with db.transaction() as session:
        return await repo.thread_versions(session, thread_id=thread)


def test_versions_and_labels_cannot_point_at_unknown_versions(registry_url: str) -> None:
    with psycopg.connect(registry_url) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO prompt_label_history (name, label, version, action, actor) "
            "VALUES ('extract', 'staging', '8.8.8', 'promote', 't')"
        )
