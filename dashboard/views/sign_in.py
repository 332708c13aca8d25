"""Sign-in: e-mail and password (``POST /v1/auth/login``); in dev, also an API key.

The password goes to the gateway only; the dashboard keeps the session's tokens in memory.
"""

from __future__ import annotations

import streamlit as st

from app.settings import get_settings
from dashboard.client import GatewayClient, GatewayError
from dashboard.nav import visible_pages
from dashboard.session import explain, sign_in


def _refuse(client: GatewayClient, message: str) -> None:
    client.logout()
    client.close()
    st.error(f"Sign-in failed. {message}")


def _finish(client: GatewayClient) -> None:
    """The same check for both ways in: who is this, and may they use any page of the dashboard?"""
    try:
        client.load_principal()
    except GatewayError as exc:
        _refuse(client, explain(exc))
        return
    if not visible_pages(client.scopes):
        held = ", ".join(sorted(client.scopes)) or "none"
        _refuse(client, f"This identity may use no page of the dashboard (its scopes: {held}).")
        return
    sign_in(client)
    st.rerun()


settings = get_settings()
dev = settings.env == "dev"
st.title("Sign in")
st.caption("The dashboard talks only to the gateway API, as you.")
url = st.text_input("Gateway URL", value=settings.gateway_url, key="signin_url").strip()

account, api_key = st.tabs(["Account", "API key (dev)"]) if dev else (st.container(), None)
with account, st.form("sign_in"):
    email = st.text_input("E-mail", key="signin_email")
    password = st.text_input("Password", type="password", key="signin_password")
    submitted = st.form_submit_button("Sign in", type="primary", key="signin_submit")
if submitted:
    try:
        client = GatewayClient.sign_in(url, email.strip(), password)
    except GatewayError as exc:
        st.error(f"Sign-in failed. {explain(exc)}")
    else:
        _finish(client)

if api_key is not None:
    with api_key, st.form("sign_in_key"):
        st.caption("For the zero-config demo: the bootstrap reviewer key is filled in.")
        key = st.text_input(
            "API key", value=settings.reviewer_api_key.get_secret_value(), type="password", key="signin_key"
        )
        with_key = st.form_submit_button("Sign in with the key", key="signin_key_submit")
    if with_key:
        _finish(GatewayClient(url, key.strip()))
