"""Sign-in: a gateway URL and a reviewer API key, checked against ``GET /v1/stats``."""

from __future__ import annotations

import streamlit as st

from app.settings import get_settings
from dashboard.client import GatewayClient, GatewayError
from dashboard.session import explain, sign_in


def _default_key() -> str:
    settings = get_settings()
    # Only the zero-config demo prefills a key; elsewhere the reviewer types their own.
    return settings.reviewer_api_key.get_secret_value() if settings.env == "dev" else ""


st.title("Sign in")
st.caption("The dashboard talks only to the gateway API, with your own reviewer key.")

with st.form("sign_in"):
    url = st.text_input("Gateway URL", value=get_settings().gateway_url, key="signin_url")
    key = st.text_input("API key", value=_default_key(), type="password", key="signin_key")
    submitted = st.form_submit_button("Sign in", type="primary", key="signin_submit")

if submitted:
    client = GatewayClient(url.strip(), key.strip())
    try:
        client.stats()
    except GatewayError as exc:
        client.close()
        st.error(f"Sign-in failed. {explain(exc)}")
    else:
        sign_in(client)
        st.rerun()
