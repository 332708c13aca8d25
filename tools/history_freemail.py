"""Free-mail domains: a shared domain is not a company, so "same company" skips it.

A small bundled list of the large consumer providers; ``MAILSPINE_HISTORY__FREE_MAIL_DOMAINS``
adds more. Subdomains count too (``mail.yahoo.co.uk`` is yahoo.co.uk's).
"""

from __future__ import annotations

FREE_MAIL_DOMAINS = frozenset(
    {
        "aol.com",
        "gmail.com",
        "googlemail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.de",
        "hotmail.fr",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "orange.fr",
        "outlook.com",
        "outlook.de",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "t-online.de",
        "web.de",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.de",
        "yahoo.fr",
        "yandex.ru",
        "zoho.com",
    }
)


def is_free_mail(domain: str, *, extra: frozenset[str] = frozenset()) -> bool:
    domain = domain.strip().lower().rstrip(".")
    known = FREE_MAIL_DOMAINS | {d.strip().lower() for d in extra}
    parts = domain.split(".")
    return any(".".join(parts[i:]) in known for i in range(len(parts) - 1))


def company_domain(address: str | None, *, extra: frozenset[str] = frozenset()) -> str | None:
    """The company domain of ``address``: its domain, lowercased; None for free-mail or no domain."""
    if not address or address.count("@") != 1:
        return None
    domain = address.rsplit("@", 1)[1].strip().lower().rstrip(".")
    if "." not in domain or is_free_mail(domain, extra=extra):
        return None
    return domain
