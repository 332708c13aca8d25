"""Versioned prompts: ``agent/prompts/<name>/<semver>.yaml``.

Each file holds the messages template, input variables, the model tier (fast/strong), owner and
changelog. Files are never edited in place once released: a change is a new version. Labels
(production/staging/canary), the Postgres sync and promotion gates build on this loader.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).resolve().parent


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


@lru_cache(maxsize=64)
def load_prompt(name: str, version: str | None = None) -> Prompt:
    folder = PROMPTS_DIR / name
    files = sorted(folder.glob("*.yaml"), key=_semver)
    if not files:
        raise FileNotFoundError(f"no prompt named {name!r} in {PROMPTS_DIR}")
    path = folder / f"{version}.yaml" if version else files[-1]
    return Prompt.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
