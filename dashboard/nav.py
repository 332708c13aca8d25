"""The dashboard's pages and who may see them.

Every page is one module under ``dashboard/views/`` and one line in ``PAGES`` below, naming the
gateway scopes it needs (all of them; the scope names are those of ``GET /v1/auth/me``). A signed-in
person sees only the pages their scopes allow, so pages a role cannot use are not in the menu at all.
Adding a page is therefore a new module plus one line, e.g.::

    Page("views/runs.py", "Runs", ":material/timeline:", frozenset({"runs:read"})),

The folder must not be called ``pages/``: Streamlit would then switch to its legacy multipage mode
and run page files directly, skipping the sign-in gate in ``app.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    path: str  # relative to dashboard/app.py
    title: str
    # A Material Symbols name (":material/mail:"): Streamlit ships that font; emoji need a font the
    # browser may lack (Debian's headless Chromium shows them as empty boxes).
    icon: str
    scopes: frozenset[str]  # every scope the page needs


SIGN_IN = Page("views/sign_in.py", "Sign in", ":material/login:", frozenset())
# In menu order; the first visible one is the landing page after sign-in.
PAGES: tuple[Page, ...] = (
    Page("views/reviews.py", "Review queue", ":material/rate_review:", frozenset({"review:read"})),
    Page("views/emails.py", "Emails", ":material/mail:", frozenset({"emails:read", "stats:read"})),
    Page("views/runs.py", "Runs", ":material/timeline:", frozenset({"emails:read"})),
    Page("views/traces.py", "Traces", ":material/account_tree:", frozenset({"emails:read"})),
    Page("views/evals.py", "Evals", ":material/science:", frozenset({"stats:read"})),
    Page("views/quality.py", "Quality and cost", ":material/monitoring:", frozenset({"stats:read"})),
    Page("views/prompts.py", "Prompts", ":material/edit_note:", frozenset({"admin"})),
)

# Inside a visible page, an action that needs more than reading (the page hides it without this scope).
DECIDE_SCOPE = "review:write"


def visible_pages(scopes: Iterable[str], pages: Iterable[Page] = PAGES) -> list[Page]:
    """The pages an identity with these scopes may use, in menu order."""
    held = frozenset(scopes)
    return [page for page in pages if page.scopes <= held]
