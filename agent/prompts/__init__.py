"""Versioned prompts: ``agent/prompts/<name>/<semver>.yaml``.

Each file holds the messages template, input variables, the model tier (fast/strong), owner and
changelog. Files are never edited in place once released: a change is a new version. Labels
(production/staging/canary), the Postgres sync and promotion gates build on this loader.

Nodes ask for a prompt by name only (``load_prompt("extract")``): the latest version, unless the
caller's context pins another one with ``pinned_prompts({"extract": "1.0.0"})`` (a context
variable, so it reaches the graph's tasks and no other run; ``mailspine eval run --prompt``).
Versions that live only in Postgres (drafts, ``agent.prompts.registry``) are loaded once into this
process with ``register_prompt`` before they are pinned; nodes never query the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

PROMPTS_DIR = Path(__file__).resolve().parent
_pins: ContextVar[Mapping[str, str] | None] = ContextVar("mailspine_prompt_pins", default=None)
_registered: dict[tuple[str, str], Prompt] = {}  # versions loaded from the registry (drafts)
_extra_files: dict[str, dict[str, Path]] = {}  # files outside PROMPTS_DIR added by add_prompt_file


class PromptMessage(BaseModel):
    role: Literal["system", "user"]
    template: str


class PromptParameters(BaseModel):
    """Model parameters for this prompt; a field left out uses the configured model's default."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)


class Prompt(BaseModel):
    name: str
    version: str
    owner: str
    model: Literal["fast", "strong"]
    changelog: str
    input_variables: list[str]
    messages: list[PromptMessage]
    # The pydantic schema the node validates the answer against ("Extraction", "Plan"); optional
    # because the 1.x files were released without it.
    output_schema: str | None = None
    parameters: PromptParameters = Field(default_factory=PromptParameters)

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


def current_pins() -> Mapping[str, str]:
    """The versions pinned in this context (``pinned_prompts``), by prompt name."""
    return dict(_pins.get() or {})


def register_prompt(prompt: Prompt) -> None:
    """Make a version stored only in the registry loadable by ``load_prompt`` in this process.
    Versions are immutable, so a second registration of the same version is a no-op."""
    _registered.setdefault((prompt.name, prompt.version), prompt)


def is_registered(name: str, version: str) -> bool:
    """Whether ``register_prompt`` made this version loadable in this process."""
    return (name, version) in _registered


def add_prompt_file(path: Path) -> Prompt:
    """Make a prompt file outside ``PROMPTS_DIR`` (a candidate, a test fixture) one of this process's
    files, so ``prompt_files`` lists it and ``load_prompt`` loads it (``eval run --prompt-file``).
    A released file of the same name and version wins over it."""
    prompt = Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    _extra_files.setdefault(prompt.name, {})[prompt.version] = path
    return prompt


def prompt_files() -> dict[str, dict[str, Path]]:
    """Every prompt file: ``{name: {version: path}}``, versions in ascending order."""
    found: dict[str, dict[str, Path]] = {}
    for folder in sorted(p for p in PROMPTS_DIR.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.yaml"), key=_semver)
        if files:
            found[folder.name] = {f.stem: f for f in files}
    for name, extra in _extra_files.items():
        merged = {**extra, **found.get(name, {})}
        found[name] = dict(sorted(merged.items(), key=lambda kv: tuple(int(p) for p in kv[0].split("."))))
    return found


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
    if version and not path.is_file() and version in _extra_files.get(name, {}):
        path = _extra_files[name][version]
    if version and not path.is_file() and (name, version) in _registered:
        return _registered[(name, version)]
    if not path.is_file():
        known = ", ".join(f.stem for f in files)
        raise FileNotFoundError(f"no version {version!r} of prompt {name!r} (known: {known})")
    return Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
