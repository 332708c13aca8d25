"""PII redaction settings (nested under ``Settings.pii``, env ``MAILSPINE_PII__FIELD``)."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

# A Fernet key for dev and tests only; refused outside dev (see Settings._refuse_default_secrets).
DEV_VAULT_KEY = "ZGV2LW9ubHktdmF1bHQta2V5LWNoYW5nZS1tZS0wMDA="


class PiiSettings(BaseModel):
    enabled: bool = True  # redact before any model sees the text
    # Fernet key (urlsafe base64 of 32 bytes) encrypting the vault; generate one with
    # python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
    vault_key: SecretStr = SecretStr(DEV_VAULT_KEY)

    def insecure_defaults(self) -> list[str]:
        return ["MAILSPINE_PII__VAULT_KEY"] if self.vault_key.get_secret_value() == DEV_VAULT_KEY else []
