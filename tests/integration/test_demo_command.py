"""The README's main job, as a user runs it: `mailspine demo --no-serve` ends with one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.settings import REPO_ROOT
from tests.support.stack import DEMO_MAILBOX, free_port

pytestmark = pytest.mark.integration


def test_demo_no_serve_processes_the_mailbox_and_prints_the_summary_last(pg_server_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": pg_server_url,
        "MAILSPINE_CRM_PORT": str(free_port()),
        "MAILSPINE_VAR_DIR": str(REPO_ROOT / "var" / "test" / "demo"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(summary) == {"processed", "auto", "review", "quarantined", "failed", "spans"}
    assert summary["processed"] == len(list(DEMO_MAILBOX.glob("*.eml"))) >= 30
    assert summary["failed"] == 0 and summary["review"] >= 3 and summary["quarantined"] >= 1
    assert summary["spans"] >= 8 * summary["processed"]
