"""``GET /metrics``: Prometheus text format for the whole deployment (``gateway.metrics``).

It needs ``stats:read`` like the rest of the statistics: give Prometheus a service key
(``mailspine keys create --name prometheus --scope stats:read``) and send it as a bearer token
(``authorization: {credentials_file: ...}`` in the scrape config), see docs/operations.md.
"""

from __future__ import annotations

from enum import Enum

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.auth import StatsReader
from gateway.metrics import read_snapshot, render
from gateway.routes_deps import AUTH_ERRORS, Session

TAGS: list[str | Enum] = ["operations"]


def register(app: FastAPI) -> None:
    @app.get(
        "/metrics",
        tags=TAGS,
        response_class=Response,
        responses={**AUTH_ERRORS, 200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics"}},
    )
    async def metrics(_: StatsReader, session: Session) -> Response:
        """Queue depth, emails by status, processing latency, model calls, tokens and cost, breaker
        refusals, review backlog, ingest lag per mailbox and live workers, read from Postgres."""
        return Response(render(await read_snapshot(session)), media_type=CONTENT_TYPE_LATEST)
