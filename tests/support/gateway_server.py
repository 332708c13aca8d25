"""The gateway served by uvicorn on a free port in a thread, for clients that need a real URL
(the dashboard's AppTests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from app.settings import Settings
from gateway.api import create_app
from tests.support.stack import free_port


@contextmanager
def served_gateway(settings: Settings, database_url: str) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` while the gateway runs; uvicorn skips its signal handlers off
    the main thread, so the test process keeps its own."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings=settings, database_url=database_url),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
