"""``mailspine eval online``: recent online scores, rolling means, drift alarms and shadow agreement."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Annotated, Any

import typer

from app.settings import Settings, get_settings

online_cli = typer.Typer(help="Online evaluation of live runs and shadow runs.")


async def online_report(settings: Settings, database_url: str, *, limit: int = 20) -> dict[str, Any]:
    """What the command shows, as JSON-ready data."""
    from app.db import Database
    from app.errors import DatabaseError
    from app.repo import online_eval

    db = Database(database_url)
    try:
        async with db.transaction() as session:
            if not await online_eval.tables_exist(session):
                raise DatabaseError("the database has no online_scores table yet: run `mailspine db upgrade`")
            scores = await online_eval.recent_scores(session, limit=limit)
            means = await online_eval.all_window_means(session, window=settings.online.window)
            open_alarms = await online_eval.current_alarms(session)
            alarms = await online_eval.recent_alarms(session, limit=limit)
            shadows = await online_eval.shadow_summary(session)
    finally:
        await db.dispose()
    return {
        "sample_rate": settings.online.rate(settings.env),
        "window": settings.online.window,
        "shadow_candidate": settings.online.shadow_candidate,
        "shadow_sample_rate": settings.online.shadow_sample_rate,
        "rolling": [
            {
                "name": m.name,
                "mean": m.mean,
                "count": m.count,
                "threshold": settings.online.threshold(m.name),
                "alarm": any(a.name == m.name for a in open_alarms),
            }
            for m in means
        ],
        "open_alarms": [_alarm(a) for a in open_alarms],
        "recent_alarms": [_alarm(a) for a in alarms],
        "recent_scores": [
            {
                "email_id": s.email_id,
                "run_id": s.run_id,
                "trace_id": s.trace_id,
                "name": s.name,
                "value": s.value,
                "details": s.details,
                "created_at": s.created_at.isoformat(),
            }
            for s in scores
        ],
        "shadow": shadows,
    }


def _alarm(alarm: Any) -> dict[str, Any]:
    return {
        "name": alarm.name,
        "window_mean": alarm.window_mean,
        "window_size": alarm.window_size,
        "threshold": alarm.threshold,
        "raised_at": alarm.raised_at.isoformat(),
        "cleared_at": alarm.cleared_at.isoformat() if alarm.cleared_at else None,
    }


def render_text(report: dict[str, Any]) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"sample rate {report['sample_rate']}, rolling window {report['window']}; "
        f"shadow candidate {report['shadow_candidate'] or 'none'} at {report['shadow_sample_rate']}",
        "",
        "rolling means (score, mean, n, threshold):",
    ]
    lines += [
        f"  {r['name']:<24} {num(r['mean'])}  n={r['count']:<5} threshold {num(r['threshold'])}"
        + ("  ALARM" if r["alarm"] else "")
        for r in report["rolling"]
    ] or ["  none yet"]
    lines += ["", f"open drift alarms: {len(report['open_alarms'])}"]
    lines += [
        f"  {a['name']}: mean {num(a['window_mean'])} over {a['window_size']} < {num(a['threshold'])} "
        f"since {a['raised_at']}"
        for a in report["open_alarms"]
    ]
    lines += ["", "recent scores (email, score, value, trace):"]
    lines += [
        f"  {s['email_id']:<6} {s['name']:<24} {num(s['value']) if s['value'] is not None else 'skipped'}"
        f"  {s['trace_id'] or '-'}"
        for s in report["recent_scores"]
    ] or ["  none yet"]
    lines += ["", "shadow runs (candidate, runs, intent / route / actions agreement):"]
    lines += [
        f"  {s['candidate']:<24} {s['runs']:<5} {num(s['intent_agreement'])} / {num(s['route_agreement'])}"
        f" / {num(s['actions_agreement'])}"
        for s in report["shadow"]
    ] or ["  none yet"]
    return "\n".join(lines)


@online_cli.callback(invoke_without_command=True)
def online(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Recent scores and alarms to list")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text")] = False,
) -> None:
    """Show recent online scores, rolling means against thresholds, drift alarms and shadow agreement."""
    from app.db import resolve_database_url

    settings = get_settings()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    report = asyncio.run(online_report(settings, resolve_database_url(settings), limit=limit))
    typer.echo(json.dumps(report, indent=2) if json_out else render_text(report))
