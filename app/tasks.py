"""The procrastinate app and its tasks. Importable on purpose: workers and ``defer`` find it here."""

from __future__ import annotations

from procrastinate import App, PsycopgConnector, RetryStrategy

from app import pipeline
from app.errors import ToolUnavailable
from app.queue import PROCESS_EMAIL, RESUME_REVIEW
from app.services import Services

# The connector is replaced with a configured one by ``app.worker`` (``App.with_connector``).
queue_app = App(connector=PsycopgConnector())

# A transient failure (CRM down, timeouts) retries with backoff; the thread resumes from its last
# checkpoint and the ledger keeps side effects from repeating.
TRANSIENT = RetryStrategy(max_attempts=8, exponential_wait=2, retry_exceptions={ToolUnavailable})

_services: Services | None = None


def bind_services(services: Services | None) -> None:
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("worker services are not initialised (run through `mailspine worker`)")
    return _services


@queue_app.task(name=PROCESS_EMAIL, retry=TRANSIENT)
async def process_email(email_id: int, trace: dict[str, str] | None = None) -> str:
    return await pipeline.process_email(services(), email_id=email_id, trace=trace)


@queue_app.task(name=RESUME_REVIEW, retry=TRANSIENT)
async def resume_review(review_id: int, trace: dict[str, str] | None = None) -> str:
    return await pipeline.resume_review(services(), review_id=review_id, trace=trace)
