"""What every system recorded after a scenario: the database, the CRM, the SMTP sink, the Sent
folder and the model server — read independently, so ``checks`` can compare them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.runner import thread_id_for
from infra.mail.dovecot import Dovecot, MailUser
from infra.mail.smtp_sink import SmtpSink
from tests.chaos.model import RecordingResponder, agent_text
from tests.support.openai_server import OpenAIServer
from tests.support.stack import Stack


@dataclass(frozen=True)
class Effect:
    """One ``side_effects`` row (the ledger)."""

    thread_id: str
    action: str
    status: str
    key: str
    result: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class CompletedCall:
    """One call the model server answered in full to a connected client (what a provider bills)."""

    body: str  # the email text of its prompt, normalised
    started_at: float
    schema: str


@dataclass
class Observed:
    emails: list[tuple[int, str, str, str]]  # id, file, status, detail
    effects: list[Effect]
    crm_notes: list[int]
    crm_contacts: dict[int, str]  # id → email
    crm_associations: list[tuple[str, int, str, int]]  # from type, from id, to type, to id
    crm_keys: dict[str, tuple[str, int | None]]  # idempotency key → (path, stored status code)
    outbound: list[tuple[int, str, str]]  # email id, Message-ID, status
    sink_ids: list[str]  # Message-ID of every message the SMTP sink received
    sent_folder_ids: list[str]  # Message-ID of every copy in the Sent folder
    audit_effects: list[str]  # idempotency key of every effect.* audit entry
    audit_broken_at: int | None  # first row of the hash chain that does not verify
    jobs: list[tuple[str, str, int]]  # task, status, count
    model_calls: list[CompletedCall]
    bodies: dict[int, str]  # email id → the text the agent saw, normalised
    first_checkpoint: dict[tuple[str, str], float]  # (thread, node) → ts of the first checkpoint after it

    def succeeded(self, action: str | None = None) -> list[Effect]:
        return [e for e in self.effects if e.status == "succeeded" and action in (None, e.action)]


def collect(
    stack: Stack,
    ids: list[int],
    *,
    sink: SmtpSink,
    dovecot: Dovecot,
    user: MailUser,
    model: OpenAIServer,
    responder: RecordingResponder,
) -> Observed:
    sql = stack.sql
    threads = [thread_id_for(i) for i in ids]
    first_checkpoint: dict[tuple[str, str], float] = {}
    for thread, ts, seen in sql(
        "SELECT thread_id, checkpoint->>'ts', checkpoint->'versions_seen' FROM checkpoints "
        "WHERE thread_id = ANY(%s) AND checkpoint_ns = ''",
        threads,
    ):
        t = datetime.fromisoformat(ts).timestamp()
        for node in seen or {}:  # versions_seen gains a node's entry in the checkpoint after it ran
            first_checkpoint[(thread, node)] = min(first_checkpoint.get((thread, node), t), t)
    return Observed(
        emails=[
            (int(i), ref, status, detail or "")
            for i, ref, status, detail in sql(
                "SELECT id, source_ref, status, status_detail FROM emails WHERE id = ANY(%s) ORDER BY id", ids
            )
        ],
        effects=[
            Effect(t, a, s, k, r or {}, int(n))
            for t, a, s, k, r, n in sql(
                "SELECT thread_id, action, status, idempotency_key, result, attempts FROM side_effects "
                "WHERE thread_id = ANY(%s) ORDER BY id",
                threads,
            )
        ],
        crm_notes=[int(i) for (i,) in sql("SELECT id FROM crm.notes")],
        crm_contacts={int(i): e for i, e in sql("SELECT id, email FROM crm.contacts")},
        crm_associations=[
            (a, int(b), c, int(d))
            for a, b, c, d in sql("SELECT from_type, from_id, to_type, to_id FROM crm.associations")
        ],
        crm_keys={k: (p, c) for k, p, c in sql("SELECT key, path, status_code FROM crm.idempotency_keys")},
        outbound=[
            (int(e), m, s) for e, m, s in sql("SELECT email_id, message_id, status FROM outbound_messages")
        ],
        sink_ids=[message_id(m.data) for m in sink.messages],
        sent_folder_ids=_sent_folder(dovecot, user),
        audit_effects=[
            k
            for (k,) in sql("SELECT details->>'idempotency_key' FROM audit_log WHERE action LIKE 'effect.%%'")
        ],
        audit_broken_at=_audit_chain(stack.url),
        jobs=[
            (t, s, int(n))
            for t, s, n in sql(
                "SELECT task_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2"
            )
        ],
        model_calls=[
            CompletedCall(
                responder.body_by_hash.get(c.messages_hash, ""), c.started_at or 0.0, c.schema_name or ""
            )
            for c in model.completed_calls()
        ],
        bodies={
            int(i): agent_text(t) for i, t in sql("SELECT id, text_body FROM emails WHERE id = ANY(%s)", ids)
        },
        first_checkpoint=first_checkpoint,
    )


def message_id(raw: bytes) -> str:
    match = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", raw)
    return match.group(1).decode() if match else "<none>"


def _sent_folder(dovecot: Dovecot, user: MailUser) -> list[str]:
    with dovecot.client(user.name, user.password) as client:
        client.select_folder("Sent", readonly=True)
        uids = client.search(["ALL"])
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        return [message_id(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]) for data in fetched.values()]


def _audit_chain(url: str) -> int | None:
    from app.db import Database
    from app.repo.audit import verify_chain

    async def run() -> int | None:
        db = Database(url)
        try:
            async with db.transaction() as session:
                return (await verify_chain(session))[1]
        finally:
            await db.dispose()

    return asyncio.run(run())


# ---------------------------------------------------------------- who ran which job, and when

# procrastinate logs both lines at INFO (``procrastinate/worker.py``): "Starting job" after it took
# the job (and with it the job's lock), "Job ... ended" before it writes the outcome (which frees
# the lock). So the next holder of a lock can only log its start after the previous one logged its
# end, and log times truncated to the millisecond keep that order.
_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?(Starting job|Job) (\w+)\[(\d+)\]"
    r"\(.*?\b(email_id|review_id)=(\d+)"  # the task's kwargs, in the order of the job's JSON args
)
_OUTCOME = re.compile(r"ended with status: ([^,]+(?:, to retry)?)(?:, lasted [\d.]+ s)?(?: - Result: (\w+))?")
THREAD_TASKS = ("process_email", "resume_review")  # the jobs that run a thread (their lock)


@dataclass(frozen=True)
class JobRun:
    """One run of a thread's job in one worker process, from that process's log."""

    worker: str  # process name (= log file name)
    task: str
    job_id: int
    thread_id: str
    start: float  # epoch seconds
    end: float  # when it logged its outcome; the moment of the SIGKILL; inf if neither
    outcome: str  # procrastinate's title (Success, "Error, to retry" ...), killed, or unfinished
    result: str = ""  # the task's return value (an email status) when it succeeded


def job_runs(
    log_dir: Path, workers: list[str], *, killed_at: Mapping[str, float], review_email: Mapping[int, int]
) -> list[JobRun]:
    """Every ``process_email`` / ``resume_review`` run in the logs of ``workers``. A run with no
    outcome line ends when its worker was killed (``killed_at``), else it never ended."""
    runs = []
    for worker in workers:
        started: dict[int, tuple[str, str, float]] = {}
        for line in (log_dir / f"{worker}.log").read_text(errors="replace").splitlines():
            match = _LOG_LINE.match(line)
            if match is None or match.group(3) not in THREAD_TASKS:
                continue
            ts, kind, task, job_id, arg, value = match.groups()
            at = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as time.time()
            email_id = int(value) if arg == "email_id" else review_email.get(int(value))
            thread = thread_id_for(email_id) if email_id is not None else f"review-{value}"
            if kind == "Starting job":
                started[int(job_id)] = (task, thread, at)
                continue
            if int(job_id) not in started:
                continue
            task, thread, start = started.pop(int(job_id))
            ended = _OUTCOME.search(line)
            title, result = (ended.group(1), ended.group(2) or "") if ended else ("?", "")
            runs.append(JobRun(worker, task, int(job_id), thread, start, at, title, result))
        end = killed_at.get(worker, float("inf"))
        for job_id, (task, thread, start) in started.items():
            outcome = "killed" if worker in killed_at else "unfinished"
            runs.append(JobRun(worker, task, job_id, thread, start, end, outcome))
    return sorted(runs, key=lambda r: r.start)


# ---------------------------------------------------------------- for people debugging a failure

DUMP_QUERIES = {
    "emails": "SELECT id, source_ref, status, status_detail, updated_at FROM emails ORDER BY id",
    "side_effects": "SELECT id, thread_id, action, status, attempts, idempotency_key, result, error, "
    "created_at, updated_at FROM side_effects ORDER BY id",
    "outbound_messages": "SELECT id, email_id, message_id, status FROM outbound_messages ORDER BY id",
    "model_calls": "SELECT thread_id, node, status, created_at FROM model_calls ORDER BY id",
    "crm_idempotency_keys": "SELECT key, path, status_code, created_at FROM crm.idempotency_keys ORDER BY id",
    "jobs": "SELECT id, task_name, status::text, attempts, lock FROM procrastinate_jobs ORDER BY id",
    "checkpoints": "SELECT thread_id, checkpoint_id, checkpoint->>'ts', metadata FROM checkpoints "
    "ORDER BY 1, 2",
}


def dump_tables(stack: Stack, out: Path) -> Path:
    """What the database holds, as JSON next to the worker logs (the database is dropped after)."""
    out.write_text(
        json.dumps({name: stack.sql(q) for name, q in DUMP_QUERIES.items()}, indent=1, default=str)
    )
    return out


def status_table(stack: Stack, ids: list[int]) -> str:
    """One line per email: status, its job's state, its ledger rows (action:status x attempts)."""
    rows = stack.sql(
        "SELECT e.id, e.source_ref, e.status, left(coalesce(e.status_detail, ''), 90), "
        "(SELECT string_agg(s.action || ':' || s.status || 'x' || s.attempts, ' ' ORDER BY s.id) "
        " FROM side_effects s WHERE s.thread_id = 'email-' || e.id), "
        "(SELECT string_agg(j.status::text, ',') FROM procrastinate_jobs j WHERE j.lock = 'email-' || e.id) "
        "FROM emails e WHERE e.id = ANY(%s) ORDER BY e.id",
        ids,
    )
    lines = [f"{'id':>4} {'file':<38} {'status':<11} {'job':<8} ledger / detail"]
    for email_id, ref, status, detail, effects, jobs in rows:
        lines.append(f"{email_id:>4} {ref[:38]:<38} {status:<11} {jobs or '-':<8} {effects or '-'}  {detail}")
    return "\n".join(lines)
