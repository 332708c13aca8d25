"""Eval a prompt version on request: the prompt console's "Run the eval gate" button.

``POST /v1/prompts/{name}/{version}/evals`` enqueues a ``prompt_eval`` job on the maintenance queue
(every worker listens to it) in the caller's transaction, with an audit record. A worker runs
``mailspine eval gate --prompt name@version --json`` as a child process: the same gate as CI, against
the baseline's dataset, in a fresh eval database on the same server, recording the run and the verdict
in ``eval_runs``. The console then shows the verdict and offers the promotion the registry allows
(``agent.prompts.registry.promote`` needs that passing run). The baseline is
``MAILSPINE_EVAL_BASELINE`` (default ``evals/baseline.json``, as in CI).

Locks: one request per version can wait at a time (the job's queueing lock; a second request is
``EvalAlreadyQueued``), and all prompt evals share one job lock, so a worker runs one at a time: an
eval makes a whole database and runs every golden case, which is not work to do twice in parallel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import MailspineError
from app.queue import MAINTENANCE_QUEUE, enqueue
from app.repo.audit import append_audit

log = logging.getLogger(__name__)

PROMPT_EVAL = "prompt_eval"
_LOCK = "prompt-eval"  # one prompt eval at a time, whichever worker runs it
# A gate run on the golden set takes about half a minute offline; a real model takes longer. Past
# this the child is killed and the job fails with that reason.
TIMEOUT_S = 3600.0


class EvalAlreadyQueued(MailspineError):
    """An eval of this version is already waiting or running."""


class PromptEvalFailed(MailspineError):
    """The gate could not run (exit 2: no baseline, bad pin, no database): not a verdict."""


@dataclass(frozen=True)
class EvalJob:
    id: int
    status: str  # todo | doing | failed | cancelled | aborted (successful jobs are deleted)
    attempts: int
    requested_by: str | None


def queueing_lock(name: str, version: str) -> str:
    return f"{_LOCK}:{name}@{version}"


async def request_eval(session: AsyncSession, *, name: str, version: str, actor: str) -> int:
    """Enqueue the gate for ``name@version`` (audited); the job id. The caller has checked that the
    version exists. A savepoint keeps the caller's transaction usable when the lock refuses."""
    try:
        async with session.begin_nested():
            job_id = await enqueue(
                session,
                queue=MAINTENANCE_QUEUE,
                task=PROMPT_EVAL,
                args={"name": name, "version": version, "requested_by": actor},
                lock=_LOCK,
                queueing_lock=queueing_lock(name, version),
            )
    except IntegrityError as exc:  # procrastinate's unique index on waiting jobs' queueing_lock
        raise EvalAlreadyQueued(f"an eval of {name}@{version} is already queued") from exc
    await append_audit(
        session,
        actor=actor,
        action="prompt.eval_requested",
        subject_type="prompt",
        subject_id=f"{name}@{version}"[:100],
        details={"job_id": job_id},
    )
    return job_id


_JOBS = text(
    "SELECT id, status::text, attempts, args->>'requested_by' FROM procrastinate_jobs "
    "WHERE task_name = :task AND args->>'name' = :name AND args->>'version' = :version "
    "ORDER BY id DESC LIMIT 20"
)


async def eval_jobs(session: AsyncSession, *, name: str, version: str) -> list[EvalJob]:
    """The version's eval jobs that are still on record: waiting, running, or failed (newest first)."""
    rows = await session.execute(_JOBS, {"task": PROMPT_EVAL, "name": name, "version": version})
    return [EvalJob(id=int(i), status=s, attempts=int(a), requested_by=r) for i, s, a, r in rows.all()]


def gate_argv(name: str, version: str, baseline: Path) -> list[str]:
    pin = f"{name}@{version}"
    return [
        sys.executable,
        "-m",
        "app.cli",
        "eval",
        "gate",
        "--prompt",
        pin,
        "--baseline",
        str(baseline),
        "--json",
    ]


async def run_gate(
    *, database_url: str, name: str, version: str, baseline: Path, timeout_s: float = TIMEOUT_S
) -> dict[str, Any]:
    """Run the gate for ``name@version`` in a child process; its JSON report (``passed``, ``runs``).

    Exit 0 (passed) and 1 (regression) are both verdicts, stored by the gate itself; exit 2 or no
    report is ``PromptEvalFailed`` with the end of the child's stderr.
    """
    env = {**os.environ, "DATABASE_URL": database_url}
    child = await asyncio.create_subprocess_exec(
        *gate_argv(name, version, baseline),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), timeout=timeout_s)
    except TimeoutError as exc:
        child.kill()
        await child.wait()
        raise PromptEvalFailed(f"the eval of {name}@{version} ran past {timeout_s:.0f} s") from exc
    except asyncio.CancelledError:  # the worker is stopping: do not leave the child running
        child.kill()
        await child.wait()
        raise
    tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
    if child.returncode not in (0, 1):
        raise PromptEvalFailed(
            f"`mailspine eval gate --prompt {name}@{version}` exited {child.returncode}: " + " | ".join(tail)
        )
    try:
        report: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError as exc:
        raise PromptEvalFailed(f"the gate printed no JSON report: {' | '.join(tail)}") from exc
    log.info(
        "prompt eval %s@%s: gate %s (runs %s)",
        name,
        version,
        "passed" if report.get("passed") else "failed",
        report.get("runs"),
    )
    return report
