"""Where tool credentials come from: a ``SecretsProvider`` answers ``get(name)`` by credential name.

Each tool names the one credential it uses (``ToolSpec.credential``); the composition root
(``app/services.py``) asks the provider for exactly that name and hands the value to that tool's
client only, so a tool never holds another tool's credential. Values are
``SecretStr`` from end to end: they never go into graph state, checkpoints, spans or logs.

Providers:
- ``EnvSecrets``: ``MAILSPINE_TOOLS__CREDENTIALS__<NAME>`` (read through Settings, like every other
  variable); ``MAILSPINE_CRM_TOKEN`` stays the fallback of ``crm_write`` and
  ``MAILSPINE_HISTORY__CRM_READ_TOKEN`` the fallback of ``crm_read``.
- ``FileSecrets``: a directory with one file per credential name (``/run/secrets/crm_write``),
  as Docker and Kubernetes mount secrets; a trailing newline is stripped.
- A provider of your own (Vault, AWS Secrets Manager, GCP Secret Manager ...): any class with
  ``get(name) -> SecretStr | None`` and a constructor taking the ``Settings``, named in
  ``MAILSPINE_TOOLS__SECRETS_PROVIDERS`` as ``package.module:Class``. ``VaultSecrets`` below is
  the documented seam, not an implementation (docs/tools.md shows one).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import SecretStr

from app.errors import ConfigurationError
from app.settings import Settings, SmtpAccount

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")


@runtime_checkable
class SecretsProvider(Protocol):
    def get(self, name: str) -> SecretStr | None:
        """The credential called ``name`` (e.g. ``crm_write``), or None when this provider has none."""
        ...


def check_name(name: str) -> str:
    if not name or not set(name) <= _NAME_CHARS or name.startswith("."):
        raise ConfigurationError(f"invalid credential name {name!r}: use lowercase letters, digits, _ - .")
    return name


class EnvSecrets:
    """Credentials from ``MAILSPINE_TOOLS__CREDENTIALS__<NAME>`` (and the legacy variables)."""

    def __init__(self, settings: Settings) -> None:
        self._values = dict(settings.tools.credentials)
        if "crm_write" not in self._values and settings.crm_token is not None:
            self._values["crm_write"] = settings.crm_token  # MAILSPINE_CRM_TOKEN, before per-tool credentials
        if "crm_read" not in self._values and settings.history.crm_read_token is not None:
            self._values["crm_read"] = settings.history.crm_read_token  # MAILSPINE_HISTORY__CRM_READ_TOKEN

    def get(self, name: str) -> SecretStr | None:
        value = self._values.get(check_name(name))
        return value if value is not None and value.get_secret_value() else None


class FileSecrets:
    """Credentials from files: ``<directory>/<name>``, one per credential."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str) -> SecretStr | None:
        path = self.directory / check_name(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(f"cannot read credential file {path}: {type(exc).__name__}") from None
        return SecretStr(value) if value else None


class VaultSecrets:
    """The seam for HashiCorp Vault or a cloud secret manager; not implemented here.

    A fork writes a class like this one (its constructor takes the ``Settings``; ``get`` reads, e.g.,
    ``secret/data/mailspine/<name>`` with the Vault client and caches it for a short time) and names
    it in ``MAILSPINE_TOOLS__SECRETS_PROVIDERS=mypackage.vault:VaultSecrets,env``. Never log values.
    """

    def __init__(self, settings: Settings) -> None:
        raise ConfigurationError(
            "VaultSecrets is a template, not an implementation: write your own provider "
            "(see docs/tools.md, 'Credentials') and name it in MAILSPINE_TOOLS__SECRETS_PROVIDERS"
        )

    def get(self, name: str) -> SecretStr | None:  # pragma: no cover - never constructed
        raise NotImplementedError


@dataclass(frozen=True)
class ChainSecrets:
    """Asks each provider in turn; the first that has the credential wins."""

    providers: Sequence[SecretsProvider] = field(default_factory=tuple)

    def get(self, name: str) -> SecretStr | None:
        for provider in self.providers:
            value = provider.get(name)
            if value is not None:
                return value
        return None


def build_provider(settings: Settings) -> ChainSecrets:
    """The providers named in ``MAILSPINE_TOOLS__SECRETS_PROVIDERS``, in that order."""
    providers: list[SecretsProvider] = []
    for entry in (part.strip() for part in settings.tools.secrets_providers.split(",")):
        if entry == "env":
            providers.append(EnvSecrets(settings))
        elif entry == "file":
            if settings.tools.secrets_dir is not None:
                providers.append(FileSecrets(settings.tools.secrets_dir))
        elif ":" in entry:
            providers.append(_load(entry, settings))
        elif entry:
            raise ConfigurationError(
                f"unknown secrets provider {entry!r} in MAILSPINE_TOOLS__SECRETS_PROVIDERS "
                "(env, file, or package.module:Class)"
            )
    return ChainSecrets(tuple(providers))


def _load(path: str, settings: Settings) -> SecretsProvider:
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load secrets provider {path!r}: {exc}") from None
    provider = cls(settings)
    if not isinstance(provider, SecretsProvider):
        raise ConfigurationError(f"secrets provider {path!r} has no get(name) method")
    return provider


def smtp_account(settings: Settings, provider: SecretsProvider) -> SmtpAccount | None:
    """The SMTP account of ``send_reply``; the provider's ``smtp`` credential, when it has one,
    replaces the password (or token source) configured in ``MAILSPINE_SMTP``."""
    if settings.smtp is None:
        return None
    secret = provider.get("smtp")
    if secret is None:
        return settings.smtp
    return settings.smtp.model_copy(
        update={
            "password": secret,
            "password_file": None,
            "oauth2_token_file": None,
            "oauth2_token_command": None,
        }
    )
