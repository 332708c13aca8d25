"""Mail credentials: each mail tool resolves its own, at the moment it connects.

The secret is never logged, put in a span, a checkpoint or the graph state; ``Secret.__repr__`` masks it.
A file or command source is read on every connect, so a rotated password or a refreshed OAuth2
token is picked up without a restart.
"""

from __future__ import annotations

import shlex
import ssl
import subprocess
from dataclasses import dataclass, field
from typing import Literal

from app.errors import MailboxAuthError
from app.repo import audit
from app.settings import ImapAccount, MailCredential, MailSecurity, SmtpAccount


@dataclass(frozen=True)
class Secret:
    kind: Literal["password", "xoauth2"]
    value: str = field(repr=False)


def resolve_secret(cred: MailCredential) -> Secret:
    _note_use(cred)
    if cred.password is not None:
        return Secret("password", cred.password.get_secret_value())
    if cred.password_file is not None:
        return Secret("password", _read(cred.password_file, "password_file"))
    if cred.oauth2_token_file is not None:
        return Secret("xoauth2", _read(cred.oauth2_token_file, "oauth2_token_file"))
    assert cred.oauth2_token_command is not None  # MailCredential guarantees exactly one source
    try:
        out = subprocess.run(
            shlex.split(cred.oauth2_token_command), capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise MailboxAuthError(
            f"oauth2_token_command failed for {cred.username}: {type(exc).__name__}"
        ) from exc
    token = out.stdout.strip()
    if not token:
        raise MailboxAuthError(f"oauth2_token_command printed no token for {cred.username}")
    return Secret("xoauth2", token)


def _note_use(cred: MailCredential) -> None:
    """The audit log's ``credential.use`` entry (first use per process): the account and the kind of
    source, never the secret."""
    source = next(
        name
        for name in ("password", "password_file", "oauth2_token_file", "oauth2_token_command")
        if getattr(cred, name) is not None
    )
    if isinstance(cred, ImapAccount):
        tool, name = "imap", f"imap_accounts[{cred.name}].{source}"
    elif isinstance(cred, SmtpAccount):
        tool, name = "smtp", f"smtp.{source}"
    else:
        tool, name = "mail", f"{cred.username}.{source}"
    audit.note_credential_use(tool=tool, credential_name=name)


def _read(path: object, what: str) -> str:
    from pathlib import Path

    try:
        value = Path(str(path)).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MailboxAuthError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if not value:
        raise MailboxAuthError(f"{what} {path} is empty")
    return value


def tls_context(*, security: MailSecurity, verify: bool, ca_file: object | None) -> ssl.SSLContext | None:
    if security == "none":
        return None
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:  # for self-signed test servers only; documented as unsafe
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
