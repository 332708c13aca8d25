"""llm-guard's model-backed scanners, loaded from a local model directory only.

PromptInjection (a text classifier, e.g. protectai/deberta-v3-base-prompt-injection-v2) and
Anonymize (a token-classification NER model plus presidio) take ``Model(path=DIR)``; transformers
loads a local directory with ``local_files_only`` and offline mode on, so nothing is downloaded.
A directory that is missing, lacks ``config.json``, weights or a tokenizer, or fails to load is
reported as ``ModelUnavailable`` with the reason; the pipeline lists it in ``Verdict.degraded``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from app.errors import GatewayError
from app.settings_guard import GuardSettings
from gateway.guards.base import Finding, result
from gateway.guards.runtime import llm_guard_input_scanners, set_torch_threads

WEIGHTS = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
TOKENIZERS = ("tokenizer.json", "vocab.txt", "spm.model", "sentencepiece.bpe.model", "vocab.json")
NerKind = Literal["deberta_ai4privacy_v2", "distilbert_ai4privacy_v2", "bert_base_ner", "bert_large_ner"]
_NER_CONFS = {
    "deberta_ai4privacy_v2": "DEBERTA_AI4PRIVACY_v2_CONF",
    "distilbert_ai4privacy_v2": "DISTILBERT_AI4PRIVACY_v2_CONF",
    "bert_base_ner": "BERT_BASE_NER_CONF",
    "bert_large_ner": "BERT_LARGE_NER_CONF",
}


class ModelUnavailable(GatewayError):
    """A configured model-backed scanner cannot run; the message says why."""


def check_model_dir(path: Path) -> None:
    """Raise ``ModelUnavailable`` unless ``path`` looks like a transformers model directory."""
    if not path.exists():
        raise ModelUnavailable(f"{path} does not exist")
    if not path.is_dir():
        raise ModelUnavailable(f"{path} is not a directory")
    if not (path / "config.json").is_file():
        raise ModelUnavailable(f"{path} has no config.json (not a transformers model directory)")
    if not any((path / name).is_file() for name in WEIGHTS):
        raise ModelUnavailable(f"{path} has no weights ({' or '.join(WEIGHTS[:2])})")
    if not any((path / name).is_file() for name in TOKENIZERS):
        raise ModelUnavailable(f"{path} has no tokenizer files ({', '.join(TOKENIZERS[:3])}, ...)")


def _local_model(path: Path, template: Any = None) -> Any:
    from llm_guard.model import Model

    local = {"local_files_only": True}
    return Model(
        path=str(path),
        kwargs={**(template.kwargs if template else {}), **local},
        tokenizer_kwargs={**(template.tokenizer_kwargs if template else {}), **local},
        pipeline_kwargs={
            **(template.pipeline_kwargs if template else {}),
            "device": "cpu",
            **({} if template else {"return_token_type_ids": False, "max_length": 512, "truncation": True}),
        },
    )


def _load(what: str, path: Path, build: Any) -> Any:
    check_model_dir(path)
    try:
        return build()
    except ModelUnavailable:
        raise
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError ... for a bad directory
        raise ModelUnavailable(
            f"loading {what} from {path} failed: {type(exc).__name__}: {exc}"[:400]
        ) from exc


class PromptInjectionScanner:
    name = "llm_guard_prompt_injection"

    def __init__(self, settings: GuardSettings, path: Path) -> None:
        self.threshold = settings.prompt_injection_threshold

        def build() -> Any:
            scanners = llm_guard_input_scanners(settings)
            set_torch_threads(settings)
            from llm_guard.input_scanners.prompt_injection import MatchType

            # One inference per email: the first 126 and last 382 tokens (where injections sit).
            return scanners.PromptInjection(
                model=_local_model(path),
                threshold=self.threshold,
                match_type=MatchType.TRUNCATE_TOKEN_HEAD_TAIL,
            )

        self._scanner = _load("the prompt-injection model", path, build)

    def scan(self, prompt: str) -> Finding:
        start = time.perf_counter()
        _, valid, risk = self._scanner.scan(prompt)
        if valid:
            return Finding(result(self.name, start, "pass", risk, []))
        reason = f"llm-guard PromptInjection model: injection score above {self.threshold}"
        return Finding(result(self.name, start, "flag", risk, [reason]))


class AnonymizeScanner:
    """Finds PII with the NER model and presidio's recognizers. Scores only: redacting PII into the
    vault is the PII stage's job, and PII in a customer email is no reason to flag it."""

    name = "llm_guard_anonymize"

    def __init__(self, settings: GuardSettings, path: Path) -> None:
        kind: NerKind = settings.ner_model_kind

        def build() -> Any:
            scanners = llm_guard_input_scanners(settings)
            set_torch_threads(settings)
            import spacy.util
            from llm_guard.input_scanners import anonymize
            from llm_guard.input_scanners.anonymize_helpers import ner_mapping
            from llm_guard.vault import Vault

            # Anonymize builds a spaCy pipeline for every language it supports and *downloads* any
            # missing model with pip; refuse instead of letting it try.
            missing = [
                f"{lang}_core_web_sm"
                for lang in anonymize.ALL_SUPPORTED_LANGUAGES
                if not spacy.util.is_package(f"{lang}_core_web_sm")
            ]
            if missing:
                raise ModelUnavailable(
                    f"spaCy model(s) {', '.join(missing)} not installed (llm-guard's Anonymize "
                    "would try to download them); install the wheels from a local mirror"
                )
            conf = dict(getattr(ner_mapping, _NER_CONFS[kind]))
            conf["DEFAULT_MODEL"] = _local_model(path, conf["DEFAULT_MODEL"])
            self._vault = Vault()
            return scanners.Anonymize(
                self._vault, recognizer_conf=conf, threshold=settings.ner_threshold, language="en"
            )

        self._scanner = _load("the NER model", path, build)

    def scan(self, prompt: str) -> Finding:
        start = time.perf_counter()
        try:
            _, valid, risk = self._scanner.scan(prompt)
            entities = len(self._vault.get())
        finally:
            self._vault.get().clear()  # placeholders would pile up across emails in a long-lived worker
        reasons = (
            [] if valid else [f"llm-guard Anonymize: {entities} PII entit(y/ies) found (not redacted here)"]
        )
        return Finding(result(self.name, start, "pass", risk, reasons))
