"""Versioned prompts: ``agent/prompts/<name>/<semver>.yaml``.

Each file holds the messages template, input variables, the model tier (fast/strong), owner and
changelog. Files are never edited in place once released: a change is a new version. Labels
(production/staging/canary), the Postgres sync and promotion gates build on this loader.

Nodes ask for a prompt by name only (``load_prompt("extract")``): the latest version, unless the
caller's context pins another one with ``pinned_prompts({"extract": "1.0.0"})`` (a context
variable, so it reaches the graph's tasks and no other run; ``mailspine eval run --prompt``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).resolve().parent
_pins: ContextVar[Mapping[str, str] | None] = ContextVar("mailspine_prompt_pins", default=None)


class PromptMessage(BaseModel):
    role: Literal["system", "user"]
    template: str


class Prompt(BaseModel):
    name: str
    version: str
    owner: str
    model: Literal["fast", "strong"]
    changelog: str
    input_variables: list[str]
    messages: list[PromptMessage]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **variables: str) -> list[tuple[str, str]]:
        missing = set(self.input_variables) - variables.keys()
        if missing:
            raise KeyError(f"prompt {self.ref} needs {sorted(missing)}")
        return [(m.role, m.template.format(**variables)) for m in self.messages]


def _semver(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in path.stem.split("."))


def load_prompt(name: str, version: str | None = None) -> Prompt:
    """``version``, else the version pinned in this context, else the latest."""
    return _load(name, version or (_pins.get() or {}).get(name))


@contextmanager
def pinned_prompts(pins: Mapping[str, str]) -> Iterator[None]:
    """Within this block (and the tasks it starts), ``load_prompt(name)`` loads ``pins[name]``."""
    for name, version in pins.items():
        _load(name, version)  # an unknown name or version fails here, not in the middle of a run
    token = _pins.set({**(_pins.get() or {}), **pins})
    try:
        yield
    finally:
        _pins.reset(token)


@lru_cache(maxsize=64)
def _load(name: str, version: str | None) -> Prompt:
    folder = PROMPTS_DIR / name
    files = sorted(folder.glob("*.yaml"), key=_semver)
    if not files:
        raise FileNotFoundError(f"no prompt named {name!r} in {PROMPTS_DIR}")
    path = folder / f"{version}.yaml" if version else files[-1]
    if not path.is_file():
        known = ", ".join(f.stem for f in files)
        raise FileNotFoundError(f"no version {version!r} of prompt {name!r} (known: {known})")
    return Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
