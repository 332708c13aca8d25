"""``mailspine tools list``: every tool, its scopes, the nodes bound to it, and its credential.

For each credential it says whether it is configured and whether it is valid: a CRM token is
checked with the CRM's token introspection (HubSpot's ``access-token-info``, which the reference
CRM implements too) and must carry the tool's scopes; the SMTP credential by logging in. A secret
is never printed. Exits 1 when a configured credential is invalid.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import typer

from app.settings import Settings, SmtpAccount, get_settings

tools_cli = typer.Typer(help="Tools: contracts, node bindings, credentials.", no_args_is_help=True)
Validity = Literal["yes", "no", "unknown", "n/a"]


@dataclass(frozen=True)
class CredentialCheck:
    configured: bool
    valid: Validity
    detail: str = ""
    scopes: tuple[str, ...] = ()  # what the CRM says the token carries


@dataclass(frozen=True)
class ToolRow:
    name: str
    access: str
    scopes: list[str]
    nodes: list[str]
    credential: str | None
    configured: str  # yes | no | n/a
    valid: Validity
    detail: str


async def _check_crm(settings: Settings, token: str | None) -> CredentialCheck:
    from app.errors import ToolError
    from tools.crm import CrmClient

    if not token:
        return CredentialCheck(configured=False, valid="n/a", detail="not configured")
    client = CrmClient(base_url=settings.crm_base_url, token=token, timeout_s=settings.crm_timeout_s)
    try:
        info = await client.token_info()
    except ToolError as exc:  # unreachable, or no introspection endpoint
        return CredentialCheck(configured=True, valid="unknown", detail=str(exc)[:200])
    finally:
        await client.aclose()
    if info is None:
        return CredentialCheck(configured=True, valid="no", detail="the CRM refused the token")
    return CredentialCheck(configured=True, valid="yes", scopes=tuple(str(s) for s in info.get("scopes", [])))


def _login_smtp(account: SmtpAccount) -> CredentialCheck:
    from app.errors import MailboxAuthError
    from tools.mail_auth import resolve_secret, tls_context

    try:
        secret = resolve_secret(account)
    except MailboxAuthError as exc:
        return CredentialCheck(configured=True, valid="no", detail=str(exc)[:200])
    context = tls_context(security=account.security, verify=account.tls_verify, ca_file=account.ca_file)
    conn: smtplib.SMTP | None = None
    try:
        if account.security == "ssl":
            conn = smtplib.SMTP_SSL(account.host, account.port, timeout=account.timeout_s, context=context)
        else:
            conn = smtplib.SMTP(account.host, account.port, timeout=account.timeout_s)
        if account.security == "starttls":
            conn.starttls(context=context)
        conn.ehlo_or_helo_if_needed()
        if secret.kind == "xoauth2":
            xoauth2 = f"user={account.username}\x01auth=Bearer {secret.value}\x01\x01"
            conn.auth("XOAUTH2", lambda challenge=None: "" if challenge else xoauth2)
        else:
            conn.login(account.username, secret.value)
    except smtplib.SMTPAuthenticationError as exc:
        return CredentialCheck(configured=True, valid="no", detail=f"login refused ({exc.smtp_code})")
    except (smtplib.SMTPException, OSError) as exc:
        return CredentialCheck(
            configured=True, valid="unknown", detail=f"SMTP check failed: {type(exc).__name__}"
        )
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    return CredentialCheck(configured=True, valid="yes", detail=f"logged in to {account.host}:{account.port}")


async def collect(settings: Settings, *, check: bool = True) -> list[ToolRow]:
    """One row per registered tool; ``check=False`` skips the network checks (valid: unknown)."""
    from tools.registry import TOOLS, ToolBox
    from tools.secrets import build_provider, smtp_account

    provider = build_provider(settings)
    box = ToolBox(bindings=settings.tools.bindings)
    checks: dict[str, CredentialCheck] = {}
    for name in sorted({t.credential for t in TOOLS if t.credential}):
        if name == "smtp":
            account = smtp_account(settings, provider)
            if account is None:
                checks[name] = CredentialCheck(configured=False, valid="n/a", detail="MAILSPINE_SMTP not set")
            else:
                checks[name] = await asyncio.to_thread(_login_smtp, account) if check else _unchecked()
        elif name.startswith("crm"):
            secret = provider.get(name)
            token = secret.get_secret_value() if secret is not None else None
            checks[name] = _unchecked() if token and not check else await _check_crm(settings, token)
        else:
            configured = provider.get(name) is not None
            checks[name] = CredentialCheck(
                configured=configured, valid="unknown" if configured else "n/a", detail="no validity check"
            )
    rows = []
    for spec in TOOLS:
        found = checks.get(spec.credential) if spec.credential else None
        valid: Validity = "n/a"
        detail = "needs no credential" if spec.credential is None else ""
        if found is not None:
            valid, detail = found.valid, found.detail
            missing = sorted(set(spec.scopes) - set(found.scopes)) if found.valid == "yes" else []
            if found.scopes and missing:
                valid, detail = "no", f"the token lacks scopes: {', '.join(missing)}"
            elif found.scopes and spec.access == "read":
                extra = sorted(s for s in found.scopes if s.endswith(".write"))
                detail = f"warning: a read tool's token has write scopes: {', '.join(extra)}" if extra else ""
        rows.append(
            ToolRow(
                name=spec.name,
                access=spec.access,
                scopes=list(spec.scopes),
                nodes=box.nodes_for(spec.name),
                credential=spec.credential,
                configured="n/a" if found is None else "yes" if found.configured else "no",
                valid=valid,
                detail=detail,
            )
        )
    return rows


def _unchecked() -> CredentialCheck:
    return CredentialCheck(configured=True, valid="unknown", detail="not checked (--no-check)")


def render(rows: list[ToolRow]) -> str:
    header = ("tool", "access", "scopes", "nodes", "credential", "configured", "valid", "detail")
    table = [header] + [
        (
            r.name,
            r.access,
            ",".join(r.scopes),
            ",".join(r.nodes) or "-",
            r.credential or "-",
            r.configured,
            r.valid,
            r.detail,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in table
    ]
    return "\n".join(line.rstrip() for line in lines)


@tools_cli.command("list")
def tools_list(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    check: Annotated[bool, typer.Option(help="Check each credential against its service")] = True,
) -> None:
    """Each tool: read or write, scopes, bound nodes, credential configured and valid."""
    rows = asyncio.run(collect(get_settings(), check=check))
    if json_out:
        payload: list[dict[str, Any]] = [asdict(r) for r in rows]
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(render(rows))
    if any(r.configured == "yes" and r.valid == "no" for r in rows):
        raise typer.Exit(1)
