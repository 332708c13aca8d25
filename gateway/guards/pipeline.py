"""The guard pipeline: every scanner, built once per process, run on every email.

Order (the verdict lists results in this order; the worst decision wins):

1. mailspine's heuristics (``gateway.scanners``), always;
2. llm-guard's model-free scanners (``llm_guard_offline``) unless ``llm_guard_enabled`` is off;
3. llm-guard's model-backed PromptInjection and Anonymize, when a local model directory is set;
4. the semantic detector (``semantic``) unless ``semantic_enabled`` is off.

A stage that cannot load is listed in ``degraded`` with the reason and skipped: the email is
still scanned by everything else. A stage that raises on one email yields a ``flag`` result (a
person looks) and a ``degraded`` entry for that email; the exception is logged, never hidden.
Loading happens in ``warm()`` (first email, or at worker start): ~7 s for llm-guard, ~3 s for
the embedding model and the in-process corpus.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.inputs import ScannerResult
from app.settings_guard import GuardSettings
from gateway.guards.base import Finding, model_text, result
from gateway.guards.model_scanners import AnonymizeScanner, ModelUnavailable, PromptInjectionScanner
from gateway.guards.runtime import shared
from gateway.mime import ParsedEmail
from gateway.scanners import DEFAULT_SCANNERS, Scanner

if TYPE_CHECKING:
    from app.settings import Settings
    from gateway.guards.llm_guard_offline import OfflineLlmGuard
    from gateway.guards.semantic import SemanticDetector

log = logging.getLogger(__name__)
ENV = "MAILSPINE_GUARD__"


@dataclass
class Outcome:
    results: list[ScannerResult]
    degraded: list[str]
    redact: list[str] = field(default_factory=list)  # secrets to remove from what the agent sees
    attributes: dict[str, str | int | float] = field(default_factory=dict)


class GuardPipeline:
    def __init__(
        self,
        settings: GuardSettings,
        *,
        database_url: str | None = None,
        heuristics: tuple[Scanner, ...] = DEFAULT_SCANNERS,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.heuristics = heuristics
        self.offline: OfflineLlmGuard | None = None
        self.prompt_injection: PromptInjectionScanner | None = None
        self.anonymize: AnonymizeScanner | None = None
        self.semantic: SemanticDetector | None = None
        self.degraded: list[str] = []  # stages that could not load, with the reason
        self._warm = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, database_url: str | None = None) -> GuardPipeline:
        return cls(settings.guard, database_url=database_url)

    def warm(self) -> GuardPipeline:
        """Load every configured stage (idempotent, thread-safe)."""
        with self._lock:
            if not self._warm:
                started = time.perf_counter()
                self._load()
                self._warm = True
                log.info(
                    "guard pipeline ready in %.1f s; degraded: %s",
                    time.perf_counter() - started,
                    "; ".join(self.degraded) or "none",
                )
        return self

    def _load(self) -> None:
        s = self.settings
        if s.llm_guard_enabled:
            from gateway.guards.llm_guard_offline import OfflineLlmGuard

            key = ("llm_guard_offline", s.token_limit, s.token_encoding, s.hf_offline)
            self.offline = self._attempt("llm_guard", lambda: shared(key, lambda: OfflineLlmGuard(s)))
            pi_key = ("prompt_injection", s.prompt_injection_threshold)
            self.prompt_injection = self._model(
                PromptInjectionScanner.name,
                s.prompt_injection_model_dir,
                "PROMPT_INJECTION_MODEL_DIR",
                lambda d: shared((*pi_key, d), lambda: PromptInjectionScanner(s, d)),
            )
            self.anonymize = self._model(
                AnonymizeScanner.name,
                s.ner_model_dir,
                "NER_MODEL_DIR",
                lambda d: shared(
                    ("ner", s.ner_threshold, s.ner_model_kind, d), lambda: AnonymizeScanner(s, d)
                ),
            )
        else:
            self.degraded.append(f"llm_guard: disabled ({ENV}LLM_GUARD_ENABLED=false), model scanners too")
        if s.semantic_enabled:
            from gateway.guards.semantic import SemanticDetector

            self.semantic = self._attempt(
                "semantic_injection", lambda: SemanticDetector(s, database_url=self.database_url)
            )
            if self.semantic is not None and (note := self.semantic.degraded()):
                self.degraded.append(note)
        else:
            self.degraded.append(f"semantic_injection: disabled ({ENV}SEMANTIC_ENABLED=false)")

    def _model(self, name: str, path: Path | None, env: str, build: Callable[[Path], Any]) -> Any:
        if path is None:
            self.degraded.append(f"{name}: no local model configured ({ENV}{env})")
            return None
        return self._attempt(name, lambda: build(path))

    def _attempt(self, name: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ModelUnavailable as exc:
            self.degraded.append(f"{name}: {exc}")
        except Exception as exc:  # a stage that cannot load must not stop the gateway: listed, logged
            log.exception("guard stage %s failed to load", name)
            self.degraded.append(f"{name}: failed to load: {type(exc).__name__}: {exc}"[:300])
        return None

    def run(self, parsed: ParsedEmail, *, heuristics: tuple[Scanner, ...] | None = None) -> Outcome:
        self.warm()
        out = Outcome(results=[], degraded=list(self.degraded))
        for scan in self.heuristics if heuristics is None else heuristics:
            out.results.append(scan(parsed))
        prompt = model_text(parsed)
        stages: list[tuple[str, Callable[[], list[Finding]]]] = []
        if self.offline is not None:
            offline = self.offline
            stages.append(("llm_guard", lambda: offline.scan(prompt)))
        if self.prompt_injection is not None:
            scanner = self.prompt_injection
            stages.append((scanner.name, lambda: [scanner.scan(prompt)]))
        if self.anonymize is not None:
            anonymize = self.anonymize
            stages.append((anonymize.name, lambda: [anonymize.scan(prompt)]))
        if self.semantic is not None:
            semantic = self.semantic
            stages.append(("semantic_injection", lambda: [semantic.scan(parsed)]))
        for name, stage in stages:
            for finding in self._run_stage(name, stage, out):
                out.results.append(finding.result)
                out.redact += finding.redact
                if finding.note:
                    out.degraded.append(finding.note)
                for key, value in finding.attributes:
                    out.attributes[f"{finding.result.name}.{key}"] = value
        return out

    def _run_stage(self, name: str, stage: Callable[[], list[Finding]], out: Outcome) -> list[Finding]:
        start = time.perf_counter()
        try:
            return stage()
        except Exception as exc:  # one email must not break the gateway: flag it, say why, log it
            log.exception("guard stage %s failed on this email", name)
            what = f"{type(exc).__name__}: {exc}"[:200]
            out.degraded.append(f"{name}: failed on this email ({what})")
            reason = f"{name} failed on this email ({what}): a person should look"
            return [Finding(result(name, start, "flag", 1.0, [reason]))]


_default: GuardPipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> GuardPipeline:
    """The process's pipeline: the one installed by ``configure_default_pipeline``, else one built
    from ``get_settings()`` without a database (the semantic detector then runs in-process)."""
    global _default
    with _default_lock:
        if _default is None:
            from app.settings import get_settings

            _default = GuardPipeline.from_settings(get_settings())
        return _default


def configure_default_pipeline(settings: Settings, *, database_url: str | None) -> GuardPipeline:
    """Install (and warm) the process's pipeline; the worker calls it at start with the resolved
    database URL so the semantic detector can use pgvector."""
    global _default
    pipeline = GuardPipeline.from_settings(settings, database_url=database_url).warm()
    with _default_lock:
        _default = pipeline
    return pipeline
