"""Per-browser-session state: the API key (never displayed), the signed-in account and the API client."""

from __future__ import annotations

import os

import streamlit as st

from streamlit_app.api_client import Account, ApiError, PlatformClient

_KEY = "vp_api_key"
_KEY_TO_REVEAL = "vp_key_to_reveal"
_ACCOUNT = "vp_account"
ACCOUNT_PAGE = "views/account.py"


def init() -> None:
    """First run of a session: take the key from `VOXPERSONA_API_KEY` when it is set."""
    if _KEY not in st.session_state:
        st.session_state[_KEY] = os.environ.get("VOXPERSONA_API_KEY") or None


def api_key() -> str | None:
    key = st.session_state.get(_KEY)
    return key if isinstance(key, str) and key else None


def client() -> PlatformClient:
    """A client for this run (cheap to build; nothing with a socket is kept in session state)."""
    return PlatformClient.from_env(api_key())


def sign_in(key: str, account: Account, *, reveal: bool = False) -> None:
    """Keep `key` for this session; `reveal` shows it once, on the next render of the account page."""
    st.session_state[_KEY] = key
    st.session_state[_ACCOUNT] = account
    if reveal:
        st.session_state[_KEY_TO_REVEAL] = key


def sign_out() -> None:
    for name in (_KEY, _ACCOUNT, _KEY_TO_REVEAL):
        st.session_state[name] = None


def take_key_to_reveal() -> str | None:
    """The key just issued at sign-up, returned exactly once."""
    key = st.session_state.get(_KEY_TO_REVEAL)
    st.session_state[_KEY_TO_REVEAL] = None
    return key if isinstance(key, str) else None


def account() -> Account | None:
    """The signed-in account (fetched once per session), or None without a usable key."""
    cached = st.session_state.get(_ACCOUNT)
    if cached:
        return cached  # type: ignore[no-any-return]
    if api_key() is None:
        return None
    with client() as api:
        try:
            me = api.me()
        except ApiError as err:
            if err.status in (401, 403):
                st.session_state[_KEY] = None  # a stale or revoked key: forget it, ask again
            return None
    st.session_state[_ACCOUNT] = me
    return me


def require_account() -> Account:
    """Stop the page with a pointer to sign-up when nobody is signed in."""
    me = account()
    if me is None:
        st.info("Sign up or paste your API key on **Account & billing** to use this page.")
        st.page_link(ACCOUNT_PAGE, label="Go to Account & billing", icon=":material/person:")
        st.stop()
    return me
