"""``mailspine history``: the semantic history's index (``tools/history_index.py``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.errors import MailspineError
from app.settings import Settings

history_cli = typer.Typer(help="The history tools' search index.", no_args_is_help=True)


@history_cli.command("reindex")
def reindex(
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Emails read per database query")] = 50,
) -> None:
    """Embed the redacted text of every stored email that has no embedding yet (a backfill)."""
    from app.cli import _boot

    settings, url = _boot("history")
    if not settings.history.semantic_enabled:
        typer.echo("error: MAILSPINE_HISTORY__SEMANTIC_ENABLED is off: nothing is embedded", err=True)
        raise typer.Exit(1)
    if not settings.pii.enabled:
        typer.echo("error: MAILSPINE_PII__ENABLED is off: only redacted text is embedded", err=True)
        raise typer.Exit(1)
    try:
        embedded, total = asyncio.run(_reindex(settings, url, batch=batch))
    except MailspineError as exc:  # no table, no embedding model (the message says which)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"embedded {embedded} of {total} email(s) without an embedding")


async def _reindex(settings: Settings, url: str, *, batch: int) -> tuple[int, int]:
    from app.db import Database
    from app.repo import email_embeddings as repo
    from tools.history_index import index_email

    db = Database(url, pool_size=2)
    try:
        async with db.transaction() as session:
            kind = await repo.backend(session)
            total = await repo.count_missing(session)
        if kind is None:
            raise MailspineError("the email_embeddings table is missing: run `mailspine db upgrade`")
        typer.echo(f"{total} email(s) to embed ({'pgvector' if kind == 'pgvector' else 'real[] + numpy'})")
        embedded, after = 0, 0
        with typer.progressbar(length=total, label="embedding") as progress:
            while True:
                async with db.transaction() as session:
                    ids = [row.id for row in await repo.missing(session, after_id=after, limit=batch)]
                if not ids:
                    break
                for email_id in ids:
                    embedded += await index_email(db, email_id=email_id, settings=settings)
                    progress.update(1)
                after = ids[-1]
        return embedded, total
    finally:
        await db.dispose()
