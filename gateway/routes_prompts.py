"""Prompt console: versions, diffs, drafts, promotion and rollback (``agent.prompts.registry``).

Reading needs ``stats:read`` (reviewers, auditors, admins); every change needs ``admin``. The
registry enforces its own rules (a promotion needs an eval run that passed the gate with that
exact version) and appends the audit record with the signed-in principal as the actor.
A refused promotion is 409 with the registry's reason; another refused request is 400.

``POST .../{version}/evals`` queues the eval gate for a version (``app.prompt_evals``: a worker runs
it); ``GET .../{version}/evals`` shows the verdicts so far and the requests still on the queue.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from agent.prompts import registry
from agent.prompts.registry import PromotionRefused, PromptRegistryError
from app import prompt_evals
from app.models_prompts import PromptVersion
from app.repo import eval_runs
from app.repo import prompts as repo
from gateway.auth import Admin, StatsReader
from gateway.routes_deps import AUTH_ERRORS, Session, errors
from gateway.routes_evals import run_out
from gateway.schemas_dashboard import (
    VERSION,
    DraftIn,
    DraftOut,
    EvalRunOut,
    LabelMoved,
    PromoteIn,
    PromptDiff,
    PromptEvalJob,
    PromptEvalQueued,
    PromptEvals,
    PromptLabelOut,
    PromptSummary,
    PromptVersionOut,
    PromptVersionRow,
    RollbackIn,
)

TAGS: list[str | Enum] = ["prompts"]
Name = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,99}$", description="A prompt name")]
Version = Annotated[str, Path(max_length=64, pattern=VERSION, description="1.2.0 or 1.2.1-draft.3")]
VersionQuery = Annotated[str, Query(max_length=64, pattern=VERSION)]


def _row(v: PromptVersion) -> PromptVersionRow:
    return PromptVersionRow(
        version=v.version,
        source=v.source,
        derived_from=v.derived_from,
        sha256=v.sha256,
        created_by=v.created_by,
        created_at=v.created_at,
    )


async def _version(session: AsyncSession, name: str, version: str) -> PromptVersion:
    row = await repo.get_version(session, name=name, version=version)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no version {version} of prompt {name}")
    return row


async def _known(session: AsyncSession, name: str) -> None:
    if not await repo.list_versions(session, name=name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no prompt {name}")


def register(app: FastAPI) -> None:
    @app.get("/v1/prompts", tags=TAGS, response_model=list[PromptSummary], responses=AUTH_ERRORS)
    async def list_prompts(_: StatsReader, session: Session) -> list[PromptSummary]:
        """Every prompt: its versions (oldest first, drafts included) and where each label points."""
        versions, labels = await repo.list_versions(session), await repo.list_labels(session)
        out = []
        for name in sorted({v.name for v in versions}):
            mine = sorted(
                (v for v in versions if v.name == name), key=lambda v: registry.version_key(v.version)
            )
            out.append(
                PromptSummary(
                    name=name,
                    versions=[_row(v) for v in mine],
                    labels=[
                        PromptLabelOut(label=lb.label, version=lb.version, percentage=lb.percentage)
                        for lb in labels
                        if lb.name == name
                    ],
                )
            )
        return out

    # Before /{version}: "diff" is no version, but the route order must not depend on that.
    @app.get(
        "/v1/prompts/{name}/diff",
        tags=TAGS,
        response_model=PromptDiff,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def diff_prompt(
        name: Name, v1: VersionQuery, v2: VersionQuery, _: StatsReader, session: Session
    ) -> PromptDiff:
        """Unified diff of two versions, rendered as YAML."""
        await _version(session, name, v1)
        await _version(session, name, v2)
        text = await registry.diff_versions(session, name=name, old=v1, new=v2)
        return PromptDiff(name=name, v1=v1, v2=v2, diff=text)

    @app.get(
        "/v1/prompts/{name}/{version}",
        tags=TAGS,
        response_model=PromptVersionOut,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def get_prompt(name: Name, version: Version, _: StatsReader, session: Session) -> PromptVersionOut:
        """One version: its content (parsed and as YAML), origin, hash and the labels on it."""
        row = await _version(session, name, version)
        labels = [lb.label for lb in await repo.list_labels(session, name=name) if lb.version == version]
        return PromptVersionOut(
            **_row(row).model_dump(),
            name=name,
            labels=labels,
            content=row.content,
            yaml=registry.render_yaml(row.content),
        )

    @app.post(
        "/v1/prompts/{name}/drafts",
        tags=TAGS,
        response_model=DraftOut,
        status_code=status.HTTP_201_CREATED,
        responses={**AUTH_ERRORS, **errors(400, 404, 413)},
    )
    async def create_draft(name: Name, body: DraftIn, who: Admin, session: Session) -> DraftOut:
        """Store edited content as a new draft version derived from ``base_version`` (audited)."""
        await _version(session, name, body.base_version)
        try:
            version = await registry.create_draft(
                session, name=name, base_version=body.base_version, content=body.content, actor=who.id
            )
        except PromptRegistryError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        return DraftOut(name=name, version=version, derived_from=body.base_version)

    @app.post(
        "/v1/prompts/{name}/promote",
        tags=TAGS,
        response_model=LabelMoved,
        responses={**AUTH_ERRORS, **errors(400, 404, 409, 413)},
    )
    async def promote(name: Name, body: PromoteIn, who: Admin, session: Session) -> LabelMoved:
        """Point a label at a version. 409 unless the eval run passed the gate with that version."""
        await _version(session, name, body.version)
        try:
            previous = await registry.promote(
                session,
                name=name,
                version=body.version,
                label=body.label,
                eval_run_id=body.eval_run_id,
                actor=who.id,
                percentage=body.percentage,
            )
        except PromotionRefused as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except PromptRegistryError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        return LabelMoved(
            name=name, label=body.label, version=body.version, previous=previous, percentage=body.percentage
        )

    @app.post(
        "/v1/prompts/{name}/rollback",
        tags=TAGS,
        response_model=LabelMoved,
        responses={**AUTH_ERRORS, **errors(400, 404, 413)},
    )
    async def rollback(name: Name, body: RollbackIn, who: Admin, session: Session) -> LabelMoved:
        """Move a label back one step in its history (audited)."""
        await _known(session, name)
        current = await repo.get_label(session, name=name, label=body.label)
        was = current.version if current else None
        try:
            version = await registry.rollback(session, name=name, label=body.label, actor=who.id)
        except PromptRegistryError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        after = await repo.get_label(session, name=name, label=body.label)
        return LabelMoved(
            name=name,
            label=body.label,
            version=version,
            previous=was,
            percentage=after.percentage if after else None,
        )

    @app.post(
        "/v1/prompts/{name}/{version}/evals",
        tags=TAGS,
        response_model=PromptEvalQueued,
        status_code=status.HTTP_202_ACCEPTED,
        responses={**AUTH_ERRORS, **errors(404, 409)},
    )
    async def request_eval(name: Name, version: Version, who: Admin, session: Session) -> PromptEvalQueued:
        """Queue the eval gate for this version (a worker runs it; audited). 409 while one is queued."""
        await _version(session, name, version)
        try:
            job_id = await prompt_evals.request_eval(session, name=name, version=version, actor=who.id)
        except prompt_evals.EvalAlreadyQueued as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        return PromptEvalQueued(name=name, version=version, job_id=job_id)

    @app.get(
        "/v1/prompts/{name}/{version}/evals",
        tags=TAGS,
        response_model=PromptEvals,
        responses={**AUTH_ERRORS, **errors(404)},
    )
    async def list_evals(name: Name, version: Version, _: StatsReader, session: Session) -> PromptEvals:
        """Eval runs of this version with their gate verdicts, and eval requests not finished yet."""
        await _version(session, name, version)
        runs = await eval_runs.runs_with_prompt(session, name=name, version=version)
        jobs = await prompt_evals.eval_jobs(session, name=name, version=version)
        return PromptEvals(
            name=name,
            version=version,
            runs=[EvalRunOut(**run_out(r)) for r in runs],
            jobs=[
                PromptEvalJob(id=j.id, status=j.status, attempts=j.attempts, requested_by=j.requested_by)
                for j in jobs
            ],
        )
