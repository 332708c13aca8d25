"""A node finished and its writes were saved, but the step's checkpoint was not (the database went
away in between): the next job continues the thread. It used to find ``snapshot.next`` empty and
start the thread over from its input — every model call again, and a differently worded plan would
get new ledger keys and act twice. (The chaos suite found it by restarting Postgres mid-run.)"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata

from agent.checkpointer import Checkpointer, open_checkpointer
from agent.context import Context
from agent.graph import build_graph
from agent.models.factory import build_models
from agent.runner import run_email, thread_id_for
from app.db import Database
from app.ingest import ingest_messages
from app.settings import REPO_ROOT, Settings
from app.settings_guard import GuardSettings
from gateway.guards.pipeline import GuardPipeline
from gateway.scan import scan_raw
from tools.crm import CrmClient
from tools.mailbox_dir import MailboxMessage

pytestmark = pytest.mark.integration
NEWSLETTER = REPO_ROOT / "infra" / "demo" / "mailbox" / "18-newsletter-industry.eml"  # no CRM, no reply


class LosesOneCheckpoint(Checkpointer):
    """Fails the checkpoint of ``step`` once, after the task's own writes went through."""

    def __init__(self, *args: Any, step: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step, self.failed = step, False

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if metadata.get("step") == self.step and not self.failed:
            self.failed = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await super().aput(config, checkpoint, metadata, new_versions)


async def test_a_lost_step_checkpoint_resumes_the_thread(database_url: str) -> None:
    guard = GuardSettings(llm_guard_enabled=False, semantic_enabled=False)
    settings = Settings(env="test", database_url=database_url, guard=guard, _env_file=None)
    raw = re.sub(
        rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + uuid.uuid4().hex.encode() + b".", NEWSLETTER.read_bytes()
    )
    db = Database(database_url)
    crm = CrmClient(base_url="http://127.0.0.1:9", token=None, timeout_s=1)
    try:
        report = await ingest_messages(
            db,
            [MailboxMessage(ref=NEWSLETTER.name, raw=raw)],
            account="lost-checkpoint",
            queue="lost-checkpoint",
        )
        [email_id] = report.new_ids
        _, email = scan_raw(
            raw, email_id=email_id, max_bytes=10**7, pipeline=GuardPipeline.from_settings(settings)
        )
        ctx = Context(db=db, models=build_models(settings), crm=crm, settings=settings)
        async with open_checkpointer(database_url, max_size=2) as saver:
            flaky = LosesOneCheckpoint(saver.conn, serde=saver.serde, step=1)  # the one after extract
            graph = build_graph(flaky)
            with pytest.raises(psycopg.OperationalError):
                await run_email(graph, ctx, email)
            outcome = await run_email(graph, ctx, email)  # the job again
        assert outcome.status == "done"
        thread = thread_id_for(email_id)
        with psycopg.connect(database_url) as conn:
            calls = conn.execute(
                "SELECT node, count(*) FROM model_calls WHERE thread_id = %s GROUP BY node", (thread,)
            ).fetchall()
            inputs = conn.execute(
                "SELECT count(*) FROM checkpoints WHERE thread_id = %s AND metadata->>'source' = 'input'",
                (thread,),
            ).fetchone()
        assert dict(calls) == {"extract": 1, "plan": 1}  # extract's answer was kept, not asked again
        assert inputs == (1,)  # the thread was continued, never started over
    finally:
        await crm.aclose()
        await db.dispose()
