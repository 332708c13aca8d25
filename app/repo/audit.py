"""Append-only, hash-chained audit log: who did what, when, in which trace, to which payload.

Tamper evidence has three parts (docs/security.md, "Audit log"):

- The chain. Each row's ``hash`` covers the previous row's hash and the row's own content.
  Version 2 rows (written since migration 0013) also cover their id, time, trace id and payload
  hash; version 1 rows (written before it) keep the old formula, and may only precede version 2 rows.
- The anchor. ``audit_anchor`` holds the id, hash and count of the last row; a trigger keeps it in
  the append's own transaction, so removing the last rows (which leaves a valid chain) is detected.
- Refusal. Triggers refuse UPDATE, DELETE and TRUNCATE; migration 0013 revokes them from every role
  but the owner, and the application runs as a role of its own (docs/security.md).

Appends are serialised by a transaction-level advisory lock; the row's id and time are taken inside
it, so ids and times follow commit order. A rolled-back append leaves a gap in the id sequence and
nothing else: the next row links to the last committed one and the anchor never saw it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

from opentelemetry import trace
from pydantic import BaseModel, SecretStr
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.hashing import payload_hash
from app.models import AuditEntry

GENESIS = "0" * 64
HASH_VERSION = 2
_CHAIN_LOCK = 0x6D61696C  # advisory lock id serialising appends so the chain has no forks
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------- hashing
def _normalise(value: Any) -> Any:
    # JSONB prints an integral float such as 1e20 as an integer; hash what reads back the same.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-JSON values as their ``str``: one text per value."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"), default=str)


def _hash_v1(row: AuditEntry) -> str:
    body = [row.prev_hash, row.actor, row.action, row.subject_type, row.subject_id, row.details]
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _hash_v2(row: AuditEntry) -> str:
    body = {
        "v": 2,
        "id": row.id,
        "at": row.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "prev": row.prev_hash,
        "actor": row.actor,
        "action": row.action,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "details": row.details,
        "trace_id": row.trace_id,
        "payload_sha256": row.payload_sha256,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def row_hash(row: AuditEntry) -> str | None:
    """The hash ``row`` should carry, or None for an unknown hash version."""
    return {1: _hash_v1, 2: _hash_v2}.get(row.hash_version, lambda _: None)(row)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


# ---------------------------------------------------------------- appending
async def append_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any] | None = None,
    payload: BaseModel | dict[str, Any] | None = None,
    payload_sha256: str | None = None,
    trace_id: str | None = None,
) -> AuditEntry:
    """Append within the caller's transaction (the lock is released when it commits).

    ``payload_sha256`` binds the entry to its subject payload (a plan, an effect's action); when it
    is not given it is computed from ``payload``, or else from ``details``. Neither may hold a secret.
    ``trace_id`` defaults to the current OpenTelemetry trace.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    await _write_credential_uses(session)
    return await _insert(
        session,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        details=details or {},
        payload=payload,
        payload_sha256=payload_sha256,
        trace_id=trace_id or current_trace_id(),
    )


async def _insert(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any],
    payload: BaseModel | dict[str, Any] | None,
    payload_sha256: str | None,
    trace_id: str | None,
) -> AuditEntry:
    # Caller holds the advisory lock. Store exactly what is hashed (JSON-native values only).
    stored = json.loads(canonical_json(details))
    digest = payload_sha256 or payload_hash(payload if payload is not None else stored)
    # One round trip for the id, the time and the previous hash (the lock is already held, so this
    # statement's snapshot sees the last committed row).
    row_id, at, prev = (await session.execute(_NEXT)).one()
    entry = AuditEntry(
        id=row_id,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        details=stored,
        prev_hash=prev or GENESIS,
        trace_id=trace_id,
        payload_sha256=digest,
        hash_version=HASH_VERSION,
    )
    entry.hash = _hash_v2(entry)
    # An INSERT statement rather than ``session.add``: every side effect appends on the hot path,
    # and the ORM's unit of work cost more than the statement. The returned entry is not attached.
    await session.execute(
        insert(AuditEntry).values(
            {column: getattr(entry, column) for column in _COLUMNS},
        )
    )
    return entry


_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "details",
    "prev_hash",
    "hash",
    "trace_id",
    "payload_sha256",
    "hash_version",
)
_NEXT = text(
    "SELECT nextval(pg_get_serial_sequence('audit_log', 'id')), clock_timestamp(), "
    "(SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1)"
)


# ---------------------------------------------------------------- credential use
# A ``credential.use`` entry is written the first time a process uses each tool credential. Tools
# note the use where the secret is read (often in a thread, without a session); the next append in
# the process writes the pending notes in its transaction, and a rollback puts them back.
_uses_lock = threading.Lock()
_pending: dict[tuple[str, str], tuple[str, str | None]] = {}  # (tool, name) -> (actor, trace id)
_recorded: set[tuple[str, str]] = set()


def note_credential_use(*, tool: str, credential_name: str, actor: str = "agent") -> None:
    """Cheap and thread-safe; call it every time a credential is used. Never pass the secret."""
    key = (tool, credential_name)
    with _uses_lock:
        if key not in _recorded and key not in _pending:
            _pending[key] = (actor, current_trace_id())


async def record_credential_use(
    session: AsyncSession, *, tool: str, credential_name: str, actor: str = "agent"
) -> None:
    """Note the use and write it now (with any other pending ones), inside the caller's transaction."""
    note_credential_use(tool=tool, credential_name=credential_name, actor=actor)
    await flush_credential_uses(session)


async def flush_credential_uses(session: AsyncSession) -> None:
    """Write pending credential-use notes in the caller's transaction (nothing to do: no query)."""
    with _uses_lock:
        if not _pending:
            return
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    await _write_credential_uses(session)


async def _write_credential_uses(session: AsyncSession) -> None:
    with _uses_lock:
        taken = dict(_pending)
        _pending.clear()
        _recorded.update(taken)
    if not taken:
        return

    committed = False

    def on_commit(_: Session) -> None:
        nonlocal committed
        committed = True

    def on_rollback(_: Session) -> None:
        if committed:
            return
        with _uses_lock:
            for key, value in taken.items():
                _recorded.discard(key)
                _pending.setdefault(key, value)

    # Registered before the inserts so that a failing insert also returns the notes.
    event.listen(session.sync_session, "after_commit", on_commit, once=True)
    event.listen(session.sync_session, "after_rollback", on_rollback, once=True)
    for (tool, name), (actor, trace_id) in sorted(taken.items()):
        await _insert(
            session,
            actor=actor,
            action="credential.use",
            subject_type="credential",
            subject_id=f"{tool}:{name}"[:100],
            details={"tool": tool, "credential": name, "process": PROCESS},
            payload=None,
            payload_sha256=None,
            trace_id=trace_id,
        )


# ---------------------------------------------------------------- configuration changes
_SECRET_FIELDS = frozenset({"database_url", "oauth2_token_command"})  # may embed a password or token


def settings_fingerprints(settings: BaseModel, *, key: bytes) -> dict[str, str]:
    """One fingerprint per setting (dotted name). Plain values: a SHA-256 of their JSON. Secrets
    (``SecretStr`` and ``_SECRET_FIELDS``): an HMAC under ``key``, so the log can tell that a
    secret changed without holding anything a guess could be checked against offline."""
    out: dict[str, str] = {}

    def walk(name: str, value: Any, secret: bool) -> None:
        if isinstance(value, BaseModel):
            for field_name in type(value).model_fields:
                walk(
                    f"{name}.{field_name}".lstrip("."),
                    getattr(value, field_name),
                    field_name in _SECRET_FIELDS,
                )
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            for i, item in enumerate(value):
                walk(f"{name}[{getattr(item, 'name', i)}]", item, secret)
        elif isinstance(value, dict) and any(isinstance(v, BaseModel | SecretStr) for v in value.values()):
            for item_key, item in sorted(value.items()):  # e.g. tools.credentials[crm_write]
                walk(f"{name}[{item_key}]", item, secret)
        elif isinstance(value, SecretStr) or (secret and value is not None):
            plain = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            out[name] = "secret:" + hmac.new(key, f"{name}={plain}".encode(), "sha256").hexdigest()[:32]
        else:
            out[name] = hashlib.sha256(canonical_json(value).encode()).hexdigest()[:32]

    walk("", settings, False)
    return out


async def record_config(
    session: AsyncSession, *, component: str, settings: BaseModel, secret_key: str
) -> AuditEntry | None:
    """Append a ``config.change`` entry when ``component``'s effective settings differ from its last
    one (the first start counts as a change). Names the changed settings; values never appear.
    ``secret_key`` keys the secrets' fingerprints (the PII vault key: it never enters the database)."""
    key = hashlib.sha256(f"mailspine-config-fingerprint|{secret_key}".encode()).digest()
    prints = settings_fingerprints(settings, key=key)
    digest = hashlib.sha256(canonical_json(prints).encode()).hexdigest()
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    last = (
        await session.execute(
            select(AuditEntry.details)
            .where(AuditEntry.action == "config.change", AuditEntry.subject_id == component)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    ).scalar()
    if last is not None and last.get("settings_sha256") == digest:
        return None
    before: dict[str, str] = (last or {}).get("fingerprints", {})
    changed = sorted(k for k in prints.keys() | before.keys() if prints.get(k) != before.get(k))
    return await append_audit(
        session,
        actor=f"{component}@{PROCESS}",
        action="config.change",
        subject_type="config",
        subject_id=component,
        details={
            "settings_sha256": digest,
            "first": last is None,
            "changed": changed,
            "secrets_changed": [k for k in changed if prints.get(k, before.get(k, "")).startswith("secret:")],
            "fingerprints": prints,
        },
        payload_sha256=digest,
    )


# ---------------------------------------------------------------- verification
ProblemKind = Literal["modified", "removed", "reordered"]


@dataclass(frozen=True)
class AuditProblem:
    row: int | None  # the row where the problem shows; None: the log as a whole
    kind: ProblemKind
    detail: str


@dataclass
class AuditReport:
    rows: int = 0
    last_id: int | None = None
    head: str = GENESIS
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_log(session: AsyncSession) -> AuditReport:
    """Check every row's hash and link, and the tail against the anchor; report each problem."""
    report = AuditReport()
    anchor = (
        await session.execute(text("SELECT last_id, last_hash, row_count FROM audit_anchor"))
    ).one_or_none()
    # Rows up to the anchor's last id were all committed when it was read (ids follow commit
    # order), so a concurrent append is neither checked half-way nor mistaken for a problem.
    bound = anchor.last_id if anchor is not None else None
    query = select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
    if bound is not None:
        query = query.where(AuditEntry.id <= bound)
    broken_links: list[tuple[AuditEntry, int | None]] = []
    seen_v2 = False
    async for row in await session.stream_scalars(query):
        if row.prev_hash != report.head:
            broken_links.append((row, report.last_id))
        expected = row_hash(row)
        if row.hash_version == 1 and seen_v2:
            report.problems.append(AuditProblem(row.id, "modified", "a version 1 row after version 2 rows"))
        elif expected is None or row.hash != expected:
            report.problems.append(AuditProblem(row.id, "modified", "its content does not match its hash"))
        seen_v2 = seen_v2 or row.hash_version == 2
        report.rows, report.last_id, report.head = report.rows + 1, row.id, row.hash
    for row, before in broken_links:
        report.problems.append(await _link_problem(session, row, before))
    await _check_anchor(session, report, anchor)
    report.problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return report


async def _link_problem(session: AsyncSession, row: AuditEntry, before: int | None) -> AuditProblem:
    target = (await session.execute(select(AuditEntry.id).where(AuditEntry.hash == row.prev_hash))).scalar()
    if target is not None and target > row.id:
        return AuditProblem(row.id, "reordered", f"it links to row {target}, which comes after it")
    if target is not None:
        return AuditProblem(
            row.id, "removed", f"it links to row {target}: the rows after {target} were removed"
        )
    if before is None:
        return AuditProblem(row.id, "removed", "it is the first row but does not start the chain")
    return AuditProblem(
        row.id,
        "removed",
        f"it does not link to row {before}: rows between them were removed, "
        f"or row {before} was modified and its hash recomputed",
    )


async def _check_anchor(session: AsyncSession, report: AuditReport, anchor: Any) -> None:
    if anchor is None:
        report.problems.append(AuditProblem(None, "removed", "the audit_anchor row is missing"))
        return
    last = report.last_id or 0
    if anchor.last_id > last:
        report.problems.append(
            AuditProblem(
                anchor.last_id,
                "removed",
                f"the last rows were removed: the anchor records row {anchor.last_id} as the last "
                f"one, the log ends at row {last}",
            )
        )
    elif report.rows and anchor.last_hash != report.head:
        report.problems.append(AuditProblem(last, "modified", "its hash differs from the anchor's"))
    if anchor.row_count > report.rows:
        missing = anchor.row_count - report.rows
        report.problems.append(
            AuditProblem(None, "removed", f"{missing} row(s) fewer than the anchor counts")
        )
    # Read after the rows above: a row beyond the anchor now was appended without its trigger.
    beyond = (await session.execute(select(func.max(AuditEntry.id)))).scalar()
    again = (await session.execute(text("SELECT last_id FROM audit_anchor"))).scalar()
    if beyond is not None and again is not None and beyond > again:
        report.problems.append(
            AuditProblem(
                beyond, "modified", f"rows after {again} were added with the anchor trigger disabled"
            )
        )


async def verify_chain(session: AsyncSession) -> tuple[int, int | None]:
    """(rows checked, the first problem's row id or None). ``verify_log`` has the full report."""
    report = await verify_log(session)
    first = report.problems[0] if report.problems else None
    return report.rows, (
        None if first is None else first.row if first.row is not None else report.last_id or 0
    )
