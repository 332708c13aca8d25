"""Settings of the history tools (nested under ``Settings.history``, env ``MAILSPINE_HISTORY__FIELD``).

Each field is documented, with its variable, in ``.env.example`` and ``docs/tools.md`` (History).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class HistorySettings(BaseModel):
    # All history items of one email together, in approximate tokens (characters / 4, see
    # tools/history_budget.py). Items past the budget are cut or left out, with a marker saying so.
    token_budget: int = Field(default=800, ge=100, le=20_000)
    # At most this many items per source (thread, sender, company, similar, CRM notes/tickets/deals).
    max_items_per_source: int = Field(default=5, ge=1, le=50)
    # Characters of an earlier email's redacted text shown in its summary (0: date and status only).
    excerpt_chars: int = Field(default=240, ge=0, le=4000)
    # A read-only CRM token (scopes crm.objects.contacts.read, crm.objects.notes.read, tickets,
    # crm.objects.deals.read, crm.objects.companies.read), the fallback of the `crm_read`
    # credential (tools/secrets.py). Unset: no CRM timeline in the history (not an error).
    crm_read_token: SecretStr | None = None
    # Semantic search over past emails: embed each email's redacted text when it is processed.
    # Off (or no embedding model): full-text search over the same candidates is the fallback.
    semantic_enabled: bool = True
    # Cosine similarity an earlier email needs to count as related (all-MiniLM-L6-v2 vectors).
    semantic_min_similarity: float = Field(default=0.35, ge=-1.0, le=1.0)
    # Candidates compared in-process (numpy) when the server has no pgvector: the newest N of the
    # sender's and company's embedded emails.
    numpy_max_candidates: int = Field(default=2000, ge=10, le=100_000)
    # Domains where one domain is not one company (gmail.com, ...), added to the bundled list.
    free_mail_domains: list[str] = Field(default_factory=list)
