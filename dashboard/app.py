"""The reviewer dashboard: ``streamlit run dashboard/app.py`` (or ``mailspine dashboard``).

A thin client of the gateway HTTP API; it never touches the database. Pages live in
``dashboard/pages/`` and are registered with ``st.navigation`` (paths relative to this file).
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:  # `streamlit run` puts only dashboard/ on sys.path
    sys.path.insert(0, _REPO_ROOT)

import streamlit as st  # noqa: E402

from dashboard.session import current_client, show_notice, sign_out  # noqa: E402

st.set_page_config(page_title="mailspine", page_icon="✉️", layout="wide")

client = current_client()
if client is None:
    pages = [st.Page("pages/sign_in.py", title="Sign in", icon="🔑")]
else:
    pages = [
        st.Page("pages/reviews.py", title="Review queue", icon="📝", default=True),
        st.Page("pages/emails.py", title="Emails", icon="📬"),
    ]
    with st.sidebar:
        st.caption(f"Signed in to {client.base_url}")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()

page = st.navigation(pages)
show_notice()
page.run()
