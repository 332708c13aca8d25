"""Build the fast, strong and fallback chat models from settings.

Clients are built with ``max_retries=0``: retries, backoff and the circuit breaker live in
``agent.llm`` (one policy for every provider, visible in spans and ``model_calls``), not in each
SDK's own retry loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from app.errors import ConfigurationError
from app.settings import Settings

# Output cap for providers that require one (Anthropic). A plan with a drafted reply fits easily.
MAX_OUTPUT_TOKENS = 4096


@dataclass(frozen=True)
class ModelSet:
    fast: BaseChatModel
    strong: BaseChatModel
    provider: str  # gen_ai.provider.name: mailspine-offline | openai | anthropic
    endpoint: str = ""  # the server the models live on (breaker key, span attribute)
    fallback: BaseChatModel | None = None  # same provider, used when the tier's model is unavailable

    def for_tier(self, tier: str) -> BaseChatModel:
        return self.strong if tier == "strong" else self.fast

    def breaker_key(self, model: BaseChatModel) -> str:
        return f"{self.provider} {self.endpoint} {model_name(model)}"


def model_name(model: BaseChatModel) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)


def _names(settings: Settings) -> tuple[str, str]:
    fast, strong = settings.model_fast, settings.model_strong
    if not fast or not strong:  # Settings fills both or refuses to start; this is for type checkers
        raise ConfigurationError("MAILSPINE_MODEL (or MAILSPINE_MODEL_FAST and _STRONG) is not set")
    return fast, strong


def build_models(settings: Settings) -> ModelSet:
    fast, strong = _names(settings)
    fallback = settings.llm.fallback_model
    if settings.model_provider == "offline":
        from agent.models.offline import OfflineChatModel

        return ModelSet(
            fast=OfflineChatModel(model_name=fast),
            strong=OfflineChatModel(model_name=strong),
            provider="mailspine-offline",
            endpoint="in-process",
            fallback=OfflineChatModel(model_name=fallback) if fallback else None,
        )
    if settings.model_provider == "openai":
        from langchain_openai import ChatOpenAI

        if settings.openai_api_key is None and settings.openai_base_url is None:
            raise ConfigurationError(
                "MAILSPINE_MODEL_PROVIDER=openai needs MAILSPINE_OPENAI_API_KEY (OpenAI) or "
                "MAILSPINE_OPENAI_BASE_URL (a local OpenAI-compatible server)"
            )
        # A local server usually ignores the key, but the client insists on one.
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"

        def openai(name: str) -> BaseChatModel:
            return ChatOpenAI(
                model=name,
                base_url=settings.openai_base_url,
                api_key=key,
                timeout=settings.model_timeout_s,
                max_retries=0,
            )

        return ModelSet(
            fast=openai(fast),
            strong=openai(strong),
            provider="openai",
            endpoint=settings.openai_base_url or "https://api.openai.com/v1",
            fallback=openai(fallback) if fallback else None,
        )
    if settings.model_provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        if settings.anthropic_api_key is None:
            raise ConfigurationError("MAILSPINE_MODEL_PROVIDER=anthropic needs MAILSPINE_ANTHROPIC_API_KEY")
        anthropic_key = settings.anthropic_api_key.get_secret_value()

        def anthropic(name: str) -> BaseChatModel:
            options: dict[str, object] = {
                "model": name,
                "api_key": anthropic_key,
                "timeout": settings.model_timeout_s,
                "max_retries": 0,
                "max_tokens": MAX_OUTPUT_TOKENS,
            }
            if settings.anthropic_base_url:
                options["base_url"] = settings.anthropic_base_url
            return ChatAnthropic(**options)

        return ModelSet(
            fast=anthropic(fast),
            strong=anthropic(strong),
            provider="anthropic",
            endpoint=settings.anthropic_base_url or "https://api.anthropic.com",
            fallback=anthropic(fallback) if fallback else None,
        )
    raise ConfigurationError(f"unknown model provider {settings.model_provider!r}")
