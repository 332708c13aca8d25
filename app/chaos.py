"""Crash points for the crash-safety tests (``tests/chaos``): TEST-ONLY fault injection.

A crash point is one line at a place where a crash is interesting::

    crash_point("ledger.after_call", thread_id=thread_id)

It does nothing unless ``MAILSPINE_CHAOS`` is set *and* ``MAILSPINE_ENV`` is ``dev`` or ``test``
(in ``prod``, or with the variable unset, every call returns at once). When enabled, the point
kills the process on the spot with ``os._exit(137)`` — what SIGKILL does: no ``finally`` blocks,
no atexit handlers, no flushed buffers, no closed connections — with the probability configured
for its name::

    MAILSPINE_CHAOS="ledger.after_call=0.2,checkpoint.put=0.05,seed=123"

A key matches a point of the same name and every point below it (``ledger=0.1`` arms
``ledger.before_call`` and ``ledger.after_call``); the most specific key wins. ``seed`` makes
the decisions reproducible; give every process its own seed (the harness derives one per worker
start), or each restart dies at the same point again. ``MAILSPINE_CHAOS_LOG=PATH``: just before
dying, the point appends one JSON line (point, pid, time, and the keyword context of the call)
so the harness can tell what killed the worker and when.

The points (one line each, at the site):
- ``ledger.before_call`` / ``ledger.after_call`` (tools/ledger.py): intent committed, call not
  made yet / call returned, result not recorded yet.
- ``checkpoint.put.before`` / ``checkpoint.put.after`` (agent/checkpointer.py): around the
  database write of every checkpoint and every task's pending writes.
- ``smtp.after_send`` (tools/mailbox_smtp.py): the SMTP server accepted the message (250 after
  DATA); the caller has not heard about it yet.
- ``crm.after_response`` (tools/crm.py): the CRM's HTTP response arrived, nothing acted on it yet.

This module reads ``os.environ`` itself (not ``Settings``) on purpose: it is a test hook that must
be callable from any layer, costs one dict lookup when disabled, and must never be configurable
through an ``.env`` file in production.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

ENV_VAR = "MAILSPINE_CHAOS"
LOG_VAR = "MAILSPINE_CHAOS_LOG"
EXIT_CODE = 137  # what a shell reports for SIGKILL (128 + 9)
_ALLOWED_ENVS = ("dev", "test")


@dataclass(frozen=True)
class ChaosConfig:
    probabilities: dict[str, float]
    seed: int | None = None
    log_path: str | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def probability(self, point: str) -> float:
        """The most specific configured key that is ``point`` or a dotted prefix of it."""
        name = point
        while True:
            if name in self.probabilities:
                return self.probabilities[name]
            if "." not in name:
                return 0.0
            name = name.rsplit(".", 1)[0]


def parse(spec: str, *, log_path: str | None = None) -> ChaosConfig:
    """``"name=probability,...,seed=N"`` → config. Raises ValueError on anything malformed."""
    probabilities: dict[str, float] = {}
    seed: int | None = None
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{ENV_VAR}: expected name=value, got {item!r}")
        if name == "seed":
            seed = int(value)
            continue
        probability = float(value)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{ENV_VAR}: probability of {name} must be within [0, 1], got {value}")
        probabilities[name] = probability
    rng = random.Random(seed) if seed is not None else random.Random()
    return ChaosConfig(probabilities=probabilities, seed=seed, log_path=log_path, rng=rng)


@lru_cache(maxsize=1)
def config() -> ChaosConfig | None:
    """The process's chaos config, read once; None (disabled) unless set in a dev/test env."""
    spec = os.environ.get(ENV_VAR, "").strip()
    if not spec or os.environ.get("MAILSPINE_ENV", "dev") not in _ALLOWED_ENVS:
        return None
    return parse(spec, log_path=os.environ.get(LOG_VAR) or None)


def crash_point(name: str, **context: object) -> None:
    """Die here (``os._exit(137)``) with the configured probability; a no-op when chaos is off."""
    cfg = config()
    if cfg is None:
        return
    probability = cfg.probability(name)
    if probability <= 0.0:
        return
    with cfg.lock:  # points are hit from the event loop and from worker threads
        hit = cfg.rng.random() < probability
    if not hit:
        return
    if cfg.log_path:
        entry = {
            "point": name,
            "pid": os.getpid(),
            "t": time.time(),
            **{k: str(v) for k, v in context.items()},
        }
        fd = os.open(cfg.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, (json.dumps(entry) + "\n").encode())
        os.close(fd)
    os._exit(EXIT_CODE)
