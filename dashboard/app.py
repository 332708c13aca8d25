"""The reviewer dashboard: ``streamlit run dashboard/app.py`` (or ``mailspine dashboard``).

A thin client of the gateway HTTP API; it never touches the database. Pages live in
``dashboard/views/`` and are registered with ``st.navigation`` (paths relative to this file). The
folder must not be called ``pages/``: Streamlit would then switch to its legacy multipage mode and
run page files directly, skipping the sign-in gate in this script.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts dashboard/ first on sys.path, where this very file would shadow the `app`
# package; the repo root goes first so `app.settings` and `dashboard.*` import as packages.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT in sys.path:
    sys.path.remove(_REPO_ROOT)
sys.path.insert(0, _REPO_ROOT)

import streamlit as st  # noqa: E402

from dashboard.session import current_client, show_notice, sign_out  # noqa: E402

st.set_page_config(page_title="mailspine", page_icon="✉️", layout="wide")

client = current_client()
if client is None:
    pages = [st.Page("views/sign_in.py", title="Sign in", icon="🔑")]
else:
    pages = [
        st.Page("views/reviews.py", title="Review queue", icon="📝", default=True),
        st.Page("views/emails.py", title="Emails", icon="📬"),
    ]
    with st.sidebar:
        who = f"{client.identity} ({client.role})" if client.role else client.identity
        st.caption(f"Signed in as {who} to {client.base_url}")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()

page = st.navigation(pages)
show_notice()
page.run()
