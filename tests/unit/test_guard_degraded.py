"""Degraded mode: every configured scanner that cannot run is listed with its reason, never raised.

The model-backed scanners are loaded for real from local directories: a tiny randomly initialised
BERT classifier (with all-MiniLM-L6-v2's tokenizer) stands in for a prompt-injection model, as no
real one can be downloaded here; its scores mean nothing, the loading and mapping code is real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings_guard import GuardSettings
from gateway.guards import model_scanners
from gateway.guards.base import Finding
from gateway.guards.embeddings import default_model_dir
from gateway.guards.pipeline import GuardPipeline
from gateway.mime import parse_message
from gateway.scan import guard

RAW = (
    b"From: a@x.example\r\nTo: support@northwind.example\r\nSubject: Hi\r\nMessage-ID: <d@x>\r\n\r\n"
    b"Where is my order NW-12345?\r\n"
)
OFF = {"llm_guard_enabled": False, "semantic_enabled": False}


def _tiny_model(path: Path, *, token_classification: bool = False) -> Path:
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
    labels = ["O", "B-PER", "I-PER"] if token_classification else ["SAFE", "INJECTION"]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model_class = BertForTokenClassification if token_classification else BertForSequenceClassification
    model_class(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_model(tmp_path_factory.mktemp("pi-model"))


def _degraded(settings: GuardSettings) -> list[str]:
    return GuardPipeline(settings).warm().degraded


def test_default_lists_both_model_scanners_without_trying_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model scanner was attempted without a model directory")

    monkeypatch.setattr(model_scanners.PromptInjectionScanner, "__init__", refuse)
    monkeypatch.setattr(model_scanners.AnonymizeScanner, "__init__", refuse)
    settings = GuardSettings(semantic_enabled=False)
    degraded = _degraded(settings)
    assert degraded[:2] == [
        "llm_guard_prompt_injection: no local model configured (MAILSPINE_GUARD__PROMPT_INJECTION_MODEL_DIR)",
        "llm_guard_anonymize: no local model configured (MAILSPINE_GUARD__NER_MODEL_DIR)",
    ]
    guarded = guard(parse_message(RAW, max_bytes=10**6), email_id=1, pipeline=GuardPipeline(settings))
    assert guarded.verdict.degraded == degraded and guarded.verdict.decision == "pass"


def test_a_missing_directory_is_degraded_not_raised(tmp_path: Path) -> None:
    degraded = _degraded(GuardSettings(prompt_injection_model_dir=tmp_path / "nope", semantic_enabled=False))
    assert f"llm_guard_prompt_injection: {tmp_path / 'nope'} does not exist" in degraded


def test_a_directory_without_config_or_weights_is_degraded(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any(
        "has no config.json" in d
        for d in _degraded(GuardSettings(ner_model_dir=empty, semantic_enabled=False))
    )
    (empty / "config.json").write_text("{}")
    degraded = _degraded(GuardSettings(prompt_injection_model_dir=empty, semantic_enabled=False))
    assert any("has no weights (model.safetensors or pytorch_model.bin)" in d for d in degraded)


def test_corrupt_weights_fail_to_load_with_the_reason(tmp_path: Path, tiny_classifier: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_classifier.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    degraded = _degraded(GuardSettings(prompt_injection_model_dir=broken, semantic_enabled=False))
    entry = next(d for d in degraded if d.startswith("llm_guard_prompt_injection:"))
    assert f"loading the prompt-injection model from {broken} failed" in entry


def test_a_local_prompt_injection_model_loads_and_scores(tiny_classifier: Path) -> None:
    settings = GuardSettings(prompt_injection_model_dir=tiny_classifier, semantic_enabled=False)
    pipeline = GuardPipeline(settings).warm()
    assert not any(d.startswith("llm_guard_prompt_injection") for d in pipeline.degraded)
    guarded = guard(parse_message(RAW, max_bytes=10**6), email_id=1, pipeline=pipeline)
    result = next(r for r in guarded.verdict.scanners if r.name == "llm_guard_prompt_injection")
    assert 0.0 <= result.score <= 1.0 and result.decision in ("pass", "flag")


def test_ner_without_spacy_models_is_degraded_and_nothing_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spacy.cli

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("spaCy download attempted")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    ner = _tiny_model(tmp_path / "ner", token_classification=True)
    entry = next(
        d for d in _degraded(GuardSettings(ner_model_dir=ner, semantic_enabled=False)) if "anonymize" in d
    )
    assert "spaCy model(s) en_core_web_sm" in entry and "not installed" in entry


def test_disabled_stages_are_listed() -> None:
    assert _degraded(GuardSettings(**OFF)) == [
        "llm_guard: disabled (MAILSPINE_GUARD__LLM_GUARD_ENABLED=false), model scanners too",
        "semantic_injection: disabled (MAILSPINE_GUARD__SEMANTIC_ENABLED=false)",
    ]


def test_a_stage_that_raises_on_one_email_flags_it_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = GuardPipeline(GuardSettings(semantic_enabled=False)).warm()
    assert pipeline.offline is not None

    def boom(prompt: str) -> list[Finding]:
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(pipeline.offline, "scan", boom)
    verdict = guard(parse_message(RAW, max_bytes=10**6), email_id=1, pipeline=pipeline).verdict
    assert verdict.decision == "flag"
    assert (
        "llm_guard failed on this email (RuntimeError: detector exploded): a person should look"
        in verdict.reasons
    )
    assert "llm_guard: failed on this email (RuntimeError: detector exploded)" in verdict.degraded
