"""Process-wide set-up for the heavy guard dependencies: offline mode, torch threads, llm-guard.

Everything here is idempotent and runs on first use, never at import: ``import llm_guard`` takes
~7 s (it imports transformers, presidio and spaCy), so the API and the CLI never pay for it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from app.settings_guard import GuardSettings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_llm_guard: ModuleType | None = None
T = TypeVar("T")
_shared: dict[tuple[Any, ...], Any] = {}
_shared_lock = threading.RLock()


def shared(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """One instance per key and process: models load once, however many pipelines are built.
    A build that raises is not cached (the next pipeline tries again)."""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = build()
        return _shared[key]  # type: ignore[no-any-return]


def prepare(settings: GuardSettings) -> None:
    """Offline mode before transformers loads; also patched in when hub modules already loaded
    (they read the variables once, at import)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # tokenizers forks threads per process otherwise
    if not settings.hf_offline:
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if (hub := sys.modules.get("huggingface_hub.constants")) is not None:
        setattr(hub, "HF_HUB_OFFLINE", True)  # noqa: B010  (read once at import)
    if (tf_hub := sys.modules.get("transformers.utils.hub")) is not None:
        setattr(tf_hub, "_is_offline_mode", True)  # noqa: B010


def set_torch_threads(settings: GuardSettings) -> None:
    import torch

    if torch.get_num_threads() != settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)


def llm_guard_input_scanners(settings: GuardSettings) -> ModuleType:
    """``llm_guard.input_scanners``, imported once per process, with llm-guard's logging quietened:
    at WARNING it logs what it found, and TokenLimit logs the whole over-long text (email content)."""
    global _llm_guard
    with _lock:
        if _llm_guard is None:
            prepare(settings)
            import structlog

            module = importlib.import_module("llm_guard.input_scanners")
            # llm-guard logs through structlog, which mailspine does not otherwise use.
            structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
            _llm_guard = module
            log.info("llm-guard loaded")
        return _llm_guard
