"""Build the fast and strong chat models from settings."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from app.errors import ConfigurationError
from app.settings import Settings


@dataclass(frozen=True)
class ModelSet:
    fast: BaseChatModel
    strong: BaseChatModel
    provider: str

    def for_tier(self, tier: str) -> BaseChatModel:
        return self.strong if tier == "strong" else self.fast


def model_name(model: BaseChatModel) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)


def build_models(settings: Settings) -> ModelSet:
    if settings.model_provider == "offline":
        from agent.models.offline import OfflineChatModel

        return ModelSet(
            fast=OfflineChatModel(model_name=settings.model_fast),
            strong=OfflineChatModel(model_name=settings.model_strong),
            provider="mailspine-offline",
        )
    if settings.model_provider == "openai":
        from langchain_openai import ChatOpenAI

        if settings.openai_api_key is None and settings.openai_base_url is None:
            raise ConfigurationError(
                "MAILSPINE_MODEL_PROVIDER=openai needs MAILSPINE_OPENAI_API_KEY or _BASE_URL"
            )
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"

        def make(name: str) -> BaseChatModel:
            return ChatOpenAI(
                model=name,
                base_url=settings.openai_base_url,
                api_key=key,
                timeout=settings.model_timeout_s,
                max_retries=2,
            )

        return ModelSet(fast=make(settings.model_fast), strong=make(settings.model_strong), provider="openai")
    raise ConfigurationError(f"unknown model provider {settings.model_provider!r}")
