"""Per-browser-session state: the signed-in gateway client and one-shot notices."""

from __future__ import annotations

from typing import Literal

import streamlit as st

from dashboard.client import GatewayClient, GatewayError, GatewayUnreachable

CLIENT_KEY = "gateway_client"
NOTICE_KEY = "notice"
NoticeKind = Literal["success", "warning", "error"]


def current_client() -> GatewayClient | None:
    client = st.session_state.get(CLIENT_KEY)
    return client if isinstance(client, GatewayClient) else None


def require_client() -> GatewayClient:
    client = current_client()
    if client is None:
        st.warning("Please sign in first.")
        st.stop()
    return client


def sign_in(client: GatewayClient) -> None:
    st.session_state[CLIENT_KEY] = client


def sign_out() -> None:
    client = st.session_state.pop(CLIENT_KEY, None)
    if isinstance(client, GatewayClient):
        client.logout()
        client.close()
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def explain(exc: GatewayError) -> str:
    """A reviewer-facing sentence for a gateway error."""
    if isinstance(exc, GatewayUnreachable):
        return f"The gateway is unreachable. {exc.message}"
    if exc.status == 401:
        return f"The gateway refused your credentials ({exc.message}). Check them and sign in again."
    if exc.status == 403:
        return f"You are not allowed to do that ({exc.message}); it needs a reviewer account."
    if exc.status == 429:
        return f"Too many attempts ({exc.message}). Wait a little and try again."
    if exc.conflict:
        return f"Already decided or stale: {exc.message}. The queue has been refreshed."
    return f"The gateway answered {exc.status}: {exc.message}"


def notify(kind: NoticeKind, message: str) -> None:
    """Queue a notice to show after the next rerun."""
    st.session_state[NOTICE_KEY] = (kind, message)


def show_notice() -> None:
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice is None:
        return
    kind, message = notice
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](message)
