"""Every setting is documented in .env.example and the README (and nothing stale is)."""

from __future__ import annotations

import re

from app.settings import REPO_ROOT, Settings


def _env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.choices[0] if alias is not None else f"MAILSPINE_{name.upper()}")  # type: ignore[union-attr]
    return names


def test_env_example_lists_every_setting() -> None:
    text = (REPO_ROOT / ".env.example").read_text()
    # Nested fields (MAILSPINE_SMTP__HOST) document their parent setting.
    documented = {
        n.split("__")[0] for n in re.findall(r"(?:^#?\s*|\s)([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)
    }
    assert _env_names() - documented == set()
    assert documented - _env_names() == set()


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert {n for n in _env_names() if f"`{n}`" not in readme} == set()
