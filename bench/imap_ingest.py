"""IMAP → Postgres ingest throughput and memory, against a real dovecot (part of ``make bench``).

For each mailbox size a fresh dovecot user gets N messages (written straight into its maildir,
which dovecot indexes on first access), then one child process runs ``sync_folder`` once, with
telemetry on as in production, and reports its wall time and peak RSS. A separate process per
size keeps the peak RSS figures independent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.stack import DEMO_MAILBOX

DEMO = [p.read_bytes() for p in sorted(DEMO_MAILBOX.glob("*.eml"))]


def fill_maildir(maildir: Path, count: int, *, uid: int, gid: int) -> None:
    new = maildir / "new"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        os.chown(maildir / sub, uid, gid)
    os.chown(maildir, uid, gid)
    for i in range(count):
        raw = re.sub(
            rb"(?im)^(Message-ID:\s*<)",
            f"\\g<1>b{i}.{uuid.uuid4().hex[:8]}.".encode(),
            DEMO[i % len(DEMO)],
            count=1,
        )
        path = new / f"{1_700_000_000 + i}.M{i}P1.bench"
        path.write_bytes(raw)
        os.chown(path, uid, gid)


def child(args: argparse.Namespace) -> None:
    """Runs in its own process: one sync of the whole folder."""
    from app.db import Database
    from app.mail_sync import sync_folder
    from app.settings import ImapAccount
    from app.telemetry import flush_telemetry, setup_telemetry
    from tools.mailbox_imap import ImapReader

    setup_telemetry(service_name="mailspine-bench", database_url=args.url, otlp_endpoint=None)
    account = ImapAccount(
        name=f"bench-{args.user}",
        host="127.0.0.1",
        port=args.port,
        security="none",
        username=args.user,
        password=args.password,
        fetch_batch=args.batch,
    )

    async def run() -> dict[str, Any]:
        db = Database(args.url)
        reader = ImapReader(account, max_bytes=25 * 1024 * 1024)
        await asyncio.to_thread(reader.open)
        start = time.perf_counter()
        report = await sync_folder(db, reader, "INBOX", queue="mailspine")
        elapsed = time.perf_counter() - start
        reader.close()
        await db.dispose()
        flush_telemetry()
        return {"ingested": len(report.new_ids), "seconds": elapsed}

    result = asyncio.run(run())
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(url: str, sizes: list[int], batch: int) -> list[dict[str, Any]]:
    from infra.mail.dovecot import Dovecot

    server = Dovecot()
    server.start()
    rows = []
    try:
        for size in sizes:
            user = server.add_user(f"bench{size}x{uuid.uuid4().hex[:4]}", uuid.uuid4().hex)
            fill_maildir(server.mail_dir / user.name, size, uid=server._uid, gid=server._gid)
            server.uidvalidity(user.name, user.password, "INBOX")  # let dovecot index before the clock starts
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.imap_ingest",
                    "--child",
                    "--url",
                    url,
                    "--port",
                    str(server.port),
                    "--user",
                    user.name,
                    "--password",
                    user.password,
                    "--batch",
                    str(batch),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                {"messages": size, "batch": batch, **result, "per_s": result["ingested"] / result["seconds"]}
            )
    finally:
        server.stop(remove_data=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--url", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    if args.child:
        child(args)


if __name__ == "__main__":
    main()
