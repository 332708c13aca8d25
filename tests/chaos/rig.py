"""Everything a chaos run talks to, set up and torn down in one place: a dovecot user for the Sent
folder, the SMTP sink, the model server with a recording responder, and the scenario's stack
(``harness.scenario_stack``). Used by the crash-safety and multi-worker tests and by the soak."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.mail.dovecot import Dovecot, MailUser
from infra.mail.smtp_sink import SmtpSink
from tests.chaos.harness import ChaosRun, Scenario, scenario_stack
from tests.chaos.model import RecordingResponder
from tests.chaos.observed import JobRun, Observed, collect, job_runs
from tests.chaos.postgres import ChaosPostgres
from tests.support.openai_server import OpenAIServer


@dataclass
class Rig:
    run: ChaosRun
    dovecot: Dovecot
    user: MailUser
    sink: SmtpSink
    model: OpenAIServer
    responder: RecordingResponder

    def observe(self) -> Observed:
        """What every system recorded (``observed.collect``), for ``checks.check``."""
        return collect(
            self.run.stack,
            self.run.ids,
            sink=self.sink,
            dovecot=self.dovecot,
            user=self.user,
            model=self.model,
            responder=self.responder,
        )

    def job_runs(self, ended_at: Mapping[str, float]) -> list[JobRun]:
        """Who ran which job from when to when, from the worker logs; ``ended_at``: when each dead
        worker died."""
        reviews = {int(r): int(e) for r, e in self.run.stack.sql("SELECT id, email_id FROM reviews")}
        return job_runs(self.run.log_dir, self.run.timeline.workers, killed_at=ended_at, review_email=reviews)


@contextmanager
def chaos_rig(
    pg: ChaosPostgres,
    dovecot: Dovecot,
    scenario: Scenario,
    *,
    log_root: Path,
    latency_s: float,
    fill_mailbox: Callable[[Path, int], None] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Rig]:
    """A fresh dovecot user, sink and model server (``latency_s`` per call) around the scenario's
    stack; ``fill_mailbox`` and ``extra_env`` as in ``scenario_stack``."""
    prefix = re.sub(r"[^a-z0-9]", "", scenario.name.lower())[:10] or "chaos"
    user = dovecot.add_user(f"{prefix}{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    sink = SmtpSink(username="agent@mailspine.test", password=secrets.token_urlsafe(12))
    sink.start()
    responder = RecordingResponder()
    try:
        with (
            OpenAIServer(responder=responder, latency_s=latency_s) as model,
            scenario_stack(
                pg,
                scenario,
                log_root=log_root,
                dovecot=dovecot,
                user=user,
                sink=sink,
                model=model,
                fill_mailbox=fill_mailbox,
                extra_env=extra_env,
            ) as run,
        ):
            yield Rig(run=run, dovecot=dovecot, user=user, sink=sink, model=model, responder=responder)
    finally:
        sink.stop()
