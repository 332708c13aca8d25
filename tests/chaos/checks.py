"""The promises a scenario must keep, checked against what each system recorded.

1. Every email settled (``done`` / ``review`` / ``rejected`` / ``quarantined``); none ``failed``.
2. The ledger agrees with the outcome: a ``done`` email has every effect ``succeeded``; one waiting
   for review has none (nobody approves anything here).
3. CRM: exactly one note per succeeded ``crm_add_note`` row (its ``note_id``) and no other note,
   each associated exactly once each way with the contact the row names; one contact per address
   and every succeeded upsert's contact exists; every succeeded CRM write has a completed
   idempotency record under its ledger key, and there are exactly as many note-creating records
   as notes (no write bypassed a key).
4. SMTP: the sink received each reply Message-ID at most once, and exactly the Message-IDs of the
   succeeded ``send_reply`` rows, which are exactly the outbound rows marked ``sent``; the Sent
   folder holds at most one copy of each and no copy of anything not sent. The one exception is
   the documented at-most-once window (``tools/mailbox_smtp.py``): a send whose worker died after
   the draft was marked ``sent`` and before the end-of-data marker reached the server is lost,
   never repeated. Such a send's retry found the mark and did not send (``reconciled``), so a
   missing reply is allowed only for a ``reconciled`` send, and ``smtp_window_losses`` counts them
   for the summary. With several jobs in one worker the window is not only the sending thread's
   microseconds: a crash point hit by another job in that moment falls into it too (seen in CI).
5. Audit: exactly one ``effect.*`` entry per succeeded effect; the hash chain verifies.
6. Model calls, from the server's log of *completed* calls (a whole answer handed to a connected
   client: what a provider bills), per (email, node):
   - none was asked for after the first checkpoint recording that the node ran;
   - between any two, a worker died (SIGKILL, crash point, exit) or Postgres restarted: asked at
     ``a`` and again at ``b``, some death lies in ``(a, b)``.
   That is the exact bound, not a count with slack: an answer can only be lost when the process
   (or its database) goes away while the call is in flight or after it, before the node's result is
   checkpointed; any other repeat pays twice for the same answer. (The runtime's own
   ``model_calls`` table is not used: a kill between the response and its insert loses the row.)
7. No ``process_email`` / ``resume_review`` job is left ``todo`` or ``doing`` once all settled.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

from agent.runner import thread_id_for
from tests.chaos.model import SCHEMA_NODE, BodyIndex, email_for_body
from tests.chaos.observed import JobRun, Observed

UNSETTLED = ("queued", "processing")
CRM_WRITES = ("crm_add_note", "crm_upsert_contact")


def check(seen: Observed, *, deaths: list[float]) -> list[str]:
    """Every broken promise, in words; empty when the scenario kept all of them."""
    return [
        *_settled(seen),
        *_ledger(seen),
        *_crm(seen),
        *_smtp(seen),
        *_audit(seen),
        *_model_calls(seen, deaths),
        *_jobs(seen),
    ]


def _settled(seen: Observed) -> list[str]:
    problems = []
    for email_id, ref, status, detail in seen.emails:
        if status in UNSETTLED:
            problems.append(f"email {email_id} ({ref}) never settled: {status}")
        elif status == "failed":
            problems.append(f"email {email_id} ({ref}) failed: {detail[:300]}")
    return problems


def _ledger(seen: Observed) -> list[str]:
    status_of = {thread_id_for(i): (i, status) for i, _, status, _ in seen.emails}
    by_thread = defaultdict(list)
    for effect in seen.effects:
        by_thread[effect.thread_id].append(effect)
    problems = []
    for thread, effects in by_thread.items():
        email_id, status = status_of[thread]
        summary = [(e.action, e.status) for e in effects]
        if status == "done" and any(e.status != "succeeded" for e in effects):
            problems.append(f"email {email_id} is done with unfinished effects {summary}")
        if status == "review":
            problems.append(f"email {email_id} waits for review but has effects {summary}")
    return problems


def _crm(seen: Observed) -> list[str]:
    problems = []
    notes = seen.succeeded("crm_add_note")
    expected = Counter(str(e.result.get("note_id")) for e in notes)
    actual = Counter(str(n) for n in seen.crm_notes)
    if expected != actual or any(n > 1 for n in expected.values()):
        problems.append(
            f"CRM notes {sorted(actual.elements())} != one per succeeded crm_add_note {sorted(expected)}"
        )
    links = Counter(seen.crm_associations)
    for e in notes:
        note, contact = int(e.result["note_id"]), int(e.result["contact_id"])
        if (
            links[("notes", note, "contacts", contact)] != 1
            or links[("contacts", contact, "notes", note)] != 1
        ):
            problems.append(f"note {note} is not associated exactly once each way with contact {contact}")
    note_links = sum(1 for a in seen.crm_associations if a[0] == "notes")
    if note_links != len(seen.crm_notes):
        problems.append(f"{note_links} note associations for {len(seen.crm_notes)} notes")
    for e in seen.succeeded("crm_upsert_contact"):
        if int(e.result["contact_id"]) not in seen.crm_contacts:
            problems.append(f"contact {e.result['contact_id']} of upsert {e.key[:12]} is not in the CRM")
    if len(set(seen.crm_contacts.values())) != len(seen.crm_contacts):
        problems.append(f"duplicate CRM contacts: {sorted(seen.crm_contacts.values())}")
    for e in (e for e in seen.succeeded() if e.action in CRM_WRITES):
        _, code = seen.crm_keys.get(e.key, ("", None))
        if code not in (200, 201):
            problems.append(
                f"{e.action} {e.key[:12]} succeeded in the ledger; the CRM's record under its key: {code}"
            )
    created = sum(
        1 for path, code in seen.crm_keys.values() if path.endswith("/objects/notes") and code == 201
    )
    if created != len(seen.crm_notes):
        problems.append(f"{created} note writes under idempotency keys, {len(seen.crm_notes)} notes")
    return problems


def smtp_window_losses(seen: Observed) -> list[str]:
    """Replies lost in the at-most-once window: recorded as sent, retried after a death, found
    marked (``reconciled``), never received."""
    received = set(seen.sink_ids)
    return sorted(
        str(e.result.get("message_id"))
        for e in seen.succeeded("send_reply")
        if e.result.get("reconciled") and str(e.result.get("message_id")) not in received
    )


def _smtp(seen: Observed) -> list[str]:
    problems = []
    sent = Counter(str(e.result.get("message_id")) for e in seen.succeeded("send_reply"))
    for lost in smtp_window_losses(seen):
        del sent[lost]
    received = Counter(seen.sink_ids)
    if received != sent or any(n > 1 for n in received.values()):
        problems.append(
            f"SMTP sink got {sum(received.values())} messages, duplicated: "
            f"{ {m: n for m, n in received.items() if n > 1} }; the ledger sent {sum(sent.values())}: "
            f"missing {sorted(set(sent) - set(received))}, unrecorded {sorted(set(received) - set(sent))}"
        )
    marked = {m for _, m, status in seen.outbound if status == "sent"} - set(smtp_window_losses(seen))
    if marked != set(sent):
        problems.append(f"outbound rows marked sent {sorted(marked)} != ledger sends {sorted(sent)}")
    copies = Counter(seen.sent_folder_ids)
    if any(n > 1 for n in copies.values()) or set(copies) - set(received):
        problems.append(f"Sent folder copies {dict(copies)}: duplicates, or copies of unsent mail")
    return problems


def _audit(seen: Observed) -> list[str]:
    audited = Counter(seen.audit_effects)
    problems = [
        f"{audited[e.key]} audit entries for succeeded effect {e.action} {e.key[:12]}"
        for e in seen.succeeded()
        if audited[e.key] != 1
    ]
    if seen.audit_broken_at is not None:
        problems.append(f"audit chain broken at row {seen.audit_broken_at}")
    return problems


def _model_calls(seen: Observed, deaths: list[float]) -> list[str]:
    problems = []
    asked: dict[tuple[int, str], list[float]] = defaultdict(list)
    index = BodyIndex(seen.bodies)
    for call in seen.model_calls:
        email_id = email_for_body(call.body, index)
        if email_id is None or call.schema not in SCHEMA_NODE:
            problems.append(
                f"a completed call the harness cannot attribute: {call.schema} {call.body[:60]!r}"
            )
            continue
        asked[(email_id, SCHEMA_NODE[call.schema])].append(call.started_at)
    for (email_id, node), times in sorted(asked.items()):
        times.sort()
        checkpointed = seen.first_checkpoint.get((thread_id_for(email_id), node))
        late = [t for t in times if checkpointed is not None and t > checkpointed]
        if late:
            problems.append(
                f"email {email_id}: {len(late)} completed {node} call(s) after {node} was checkpointed"
            )
        for a, b in itertools.pairwise(times):
            if not any(a < d < b for d in deaths):
                problems.append(
                    f"email {email_id}: {node} answered twice ({b - a:.2f}s apart), no crash between"
                )
    return problems


def _jobs(seen: Observed) -> list[str]:
    stuck = [
        (t, s, n)
        for t, s, n in seen.jobs
        if s in ("todo", "doing") and t in ("process_email", "resume_review")
    ]
    return [f"jobs left behind: {stuck}"] if stuck else []


def model_call_counts(seen: Observed) -> dict[str, int]:
    """Completed calls against the extract/plan nodes that were checkpointed (for the report)."""
    nodes = sum(1 for (_, node) in seen.first_checkpoint if node in SCHEMA_NODE.values())
    return {"completed_model_calls": len(seen.model_calls), "model_nodes_checkpointed": nodes}


def thread_overlaps(runs: list[JobRun]) -> list[str]:
    """One thread never runs in two places at once: per thread, the runs of its jobs (from the
    worker logs, ``observed.job_runs``) are disjoint in time, whichever process ran them."""
    by_thread: dict[str, list[JobRun]] = defaultdict(list)
    for run in runs:
        by_thread[run.thread_id].append(run)
    problems = []
    for thread, thread_runs in sorted(by_thread.items()):
        thread_runs.sort(key=lambda r: r.start)
        latest = thread_runs[0]
        for run in thread_runs[1:]:
            if run.start < latest.end:
                problems.append(
                    f"{thread} ran on {latest.worker} (job {latest.job_id}, {latest.outcome}) and on "
                    f"{run.worker} (job {run.job_id}) at once: {latest.end - run.start:.3f}s overlap"
                )
            if run.end > latest.end:
                latest = run
    return problems
