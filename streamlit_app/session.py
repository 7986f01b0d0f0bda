"""Per-browser-session state: who is signed in, with which bearer (a `vps_…` session token from signing in; never
displayed), and the API client. The session token lives in a cookie too, so a reload or a new tab stays signed
in; signing out ends it on the platform, so every tab holding it is signed out at its next run. Nothing here falls
back to a shared account: a visitor starts signed out."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime

import streamlit as st

from streamlit_app import cookies
from streamlit_app.api_client import Account, ApiError, PlatformClient, SignedIn

_KEY = "vp_api_key"  # the bearer: a session token; an API key only where a test or a tool puts one
_KEY_TO_REVEAL = "vp_key_to_reveal"
_ACCOUNT = "vp_account"
_CHECKED_AT = "vp_account_checked_at"
_ENDED = "vp_session_ended"  # why this tab was signed out, shown once on the account page
ACCOUNT_PAGE = "views/account.py"
SESSION_PREFIX = "vps_"
# How long a run trusts the account it last read: a sign-out in another tab shows here within this long.
RECHECK_S = 2.0


def init() -> None:
    """Every run: the first run of a browser session takes the sign-in cookie; pending cookie writes go out."""
    if _KEY not in st.session_state:
        token = cookies.read()
        st.session_state[_KEY] = token if token and token.startswith(SESSION_PREFIX) else None
    cookies.sync()


def api_key() -> str | None:
    """The bearer this session sends (a session token, or an API key)."""
    key = st.session_state.get(_KEY)
    return key if isinstance(key, str) and key else None


def client() -> PlatformClient:
    """A client for this run (cheap to build; nothing with a socket is kept in session state)."""
    return PlatformClient.from_env(api_key())


def start(signed_in: SignedIn, *, reveal_key: str | None = None) -> None:
    """Keep a new session (from `POST /sessions`) for this tab and, through the cookie, for the browser;
    `reveal_key` is an API key to show once, on the next render of the account page."""
    token = signed_in["sessionToken"] or ""
    st.session_state[_KEY] = token
    _remember(signed_in["account"])
    st.session_state[_KEY_TO_REVEAL] = reveal_key
    st.session_state[_ENDED] = None
    cookies.write(token, _seconds_until(signed_in["expiresAt"]))


def sign_in(key: str, account: Account, *, reveal: bool = False) -> None:
    """Use `key` (a session token or an API key) for this tab; with the bearer already in use, this only
    refreshes the account shown (e.g. after its payout wallet changed)."""
    if key != api_key():
        st.session_state[_KEY] = key
        if key.startswith(SESSION_PREFIX):
            cookies.write(key, 24 * 3600)
    _remember(account)
    if reveal:
        st.session_state[_KEY_TO_REVEAL] = key


def sign_out() -> None:
    """End the session on the platform (every tab holding it is signed out), then forget it here."""
    key = api_key()
    if key and key.startswith(SESSION_PREFIX):
        # Already ended, or the platform is away: the token is forgotten here either way.
        with client() as api, contextlib.suppress(ApiError):
            api.sign_out()
    _forget(None)


def _forget(reason: str | None) -> None:
    had_cookie_token = (api_key() or "").startswith(SESSION_PREFIX) or cookies.read() is not None
    for name in (_KEY, _ACCOUNT, _KEY_TO_REVEAL, _CHECKED_AT):
        st.session_state[name] = None
    st.session_state[_ENDED] = reason
    if had_cookie_token:
        cookies.write(None)


def _remember(account: Account) -> None:
    st.session_state[_ACCOUNT] = account
    st.session_state[_CHECKED_AT] = time.monotonic()


def _seconds_until(iso: str | None) -> int:
    if not iso:
        return 0
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return 0
    return max(0, int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() - time.time()))


def key_to_reveal() -> str | None:
    """The key just issued at sign-up: shown until `key_revealed()` (the user has copied it) or sign-out — not
    just for one run, as the cookie's write may rerun the page at once."""
    key = st.session_state.get(_KEY_TO_REVEAL)
    return key if isinstance(key, str) else None


def key_revealed() -> None:
    st.session_state[_KEY_TO_REVEAL] = None


def take_ended_reason() -> str | None:
    """Why this tab was signed out without asking (the session ended elsewhere or expired), once."""
    reason = st.session_state.get(_ENDED)
    st.session_state[_ENDED] = None
    return reason if isinstance(reason, str) else None


def account() -> Account | None:
    """The signed-in account, or None. Rechecked with the platform every few seconds, so a session ended in
    another tab (or expired, or a revoked key) signs this tab out too."""
    if api_key() is None:
        return None
    cached = st.session_state.get(_ACCOUNT)
    checked = st.session_state.get(_CHECKED_AT) or 0.0
    if cached and time.monotonic() - checked < RECHECK_S:
        return cached  # type: ignore[no-any-return]
    with client() as api:
        try:
            me = api.me()
        except ApiError as err:
            if err.status in (401, 403):
                _forget("Your sign-in has ended (signed out elsewhere, expired or revoked). Sign in again.")
                return None
            return cached if cached else None  # the platform is away: keep showing who was signed in
    _remember(me)
    return me


def demo_credentials() -> tuple[str, str] | None:
    """The demo creator's email and password when `make run` made one (only its "Try the demo" button uses
    them: nobody is signed in as the demo without asking)."""
    email = os.environ.get("VOXPERSONA_DEMO_EMAIL")
    password = os.environ.get("VOXPERSONA_DEMO_PASSWORD")
    return (email, password) if email and password else None


def require_account() -> Account:
    """Stop the page with a pointer to sign-in when nobody is signed in."""
    me = account()
    if me is None:
        st.info("Sign in (or sign up) on **Account & billing** to use this page.")
        st.page_link(ACCOUNT_PAGE, label="Go to Account & billing", icon=":material/person:")
        st.stop()
    return me
