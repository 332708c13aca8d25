"""Every route declares who may call it, and docs/security.md says the same."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute

from app.settings import REPO_ROOT, Settings
from gateway.api import create_app

DOCS = REPO_ROOT / "docs" / "security.md"
UNGUARDED = {"/health"}


def _routes() -> list[APIRoute]:
    app = create_app(settings=Settings(env="test", _env_file=None), database_url="postgresql://unused/x")  # type: ignore[call-arg]
    return [r for r in app.routes if isinstance(r, APIRoute)]


def _permission(dependant: Any) -> str | None:
    """What the route's dependencies demand: a scope, "public", "signed-in user" or "any authenticated"."""
    for dep in dependant.dependencies:
        if getattr(dep.call, "__mailspine_public__", False):
            return "public"
        if hasattr(dep.call, "__mailspine_scope__"):
            if dep.call.__mailspine_users_only__:
                return "signed-in user"
            scope = dep.call.__mailspine_scope__
            return f"`{scope}`" if scope else "any authenticated"
        found = _permission(dep)
        if found:
            return found
    return None


def test_every_route_declares_a_scope_or_public() -> None:
    undeclared = [
        f"{r.methods} {r.path}" for r in _routes() if r.path not in UNGUARDED and not _permission(r.dependant)
    ]
    assert undeclared == []


def test_docs_route_table_matches_the_code() -> None:
    documented = dict(re.findall(r"^\| `([A-Z]+ /[^`]*)` \| ([^|]+?) \|", DOCS.read_text(), re.MULTILINE))
    actual = {
        f"{method} {r.path}": _permission(r.dependant) or "nothing" for r in _routes() for method in r.methods
    }
    assert documented == actual
