"""The reviewer dashboard: ``streamlit run dashboard/app.py`` (or ``mailspine dashboard``).

A thin client of the gateway HTTP API; it never touches the database. This script is the router:
signed out, the only page is Sign in; signed in, ``st.navigation`` gets the pages of
``dashboard/nav.py`` that the person's scopes allow (one module per page under ``dashboard/views/``;
adding a page is one line in ``nav.PAGES``).
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

from dashboard import nav  # noqa: E402
from dashboard.session import current_client, show_notice, sign_out  # noqa: E402


def _page(page: nav.Page) -> st.Page:
    return st.Page(page.path, title=page.title, icon=page.icon)


st.set_page_config(page_title="mailspine", page_icon="✉️", layout="wide")

client = current_client()
if client is None:
    pages = [_page(nav.SIGN_IN)]
else:
    pages = [_page(page) for page in nav.visible_pages(client.scopes)]
    with st.sidebar:
        who = f"{client.identity} ({client.role})" if client.role else client.identity
        st.caption(f"Signed in as {who} to {client.base_url}")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()

page = st.navigation(pages)
show_notice()
page.run()
