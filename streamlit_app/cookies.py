"""The sign-in cookie: read with `st.context.cookies` (sent with the page's WebSocket request, so a reload or a
new tab starts signed in), written by a few lines of JavaScript mounted through Streamlit's own component API
(`st.components.v2`, in the page, no iframe and no third-party package). The browser acknowledges each write, and
only then does the app stop mounting it, so a stale tab never rewrites an old value."""

from __future__ import annotations

import uuid

import streamlit as st

NAME = "vp_session"
_PENDING = "vp_cookie_pending"  # {"id", "name", "value", "maxAge"} until the browser has written it

_JS = """
export default function (component) {
  const { data, setTriggerValue } = component;
  if (!data || !data.name) return;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  const value = data.value ? encodeURIComponent(data.value) : "";
  const maxAge = data.value ? data.maxAge : 0;
  document.cookie = `${data.name}=${value}; Path=/; Max-Age=${maxAge}; SameSite=Strict${secure}`;
  setTriggerValue("written", data.id);
}
"""
_writer = st.components.v2.component("voxpersona_cookie_writer", js=_JS)


def read() -> str | None:
    """The cookie as the browser sent it when this session connected (reloads and new tabs send it again)."""
    value = st.context.cookies.get(NAME)  # nothing real without a browser (bare mode, AppTest)
    return value if isinstance(value, str) and value else None


def write(value: str | None, max_age_s: int = 0) -> None:
    """Set the cookie (or clear it, with None) at this session's next render."""
    st.session_state[_PENDING] = {
        "id": uuid.uuid4().hex,
        "name": NAME,
        "value": value or "",
        "maxAge": max(0, int(max_age_s)),
    }


def _written(op_id: str) -> None:
    """The browser ran this write (its trigger fired): stop mounting it, unless a newer write replaced it."""
    pending = st.session_state.get(_PENDING)
    if pending and pending["id"] == op_id:
        st.session_state[_PENDING] = None


def sync() -> None:
    """Mount the writer while a write waits for the browser (call once per run, e.g. from the app's sidebar)."""
    pending = st.session_state.get(_PENDING)
    if not pending:
        return
    op_id = pending["id"]
    with st.sidebar:  # out of the page's own layout
        _writer(key=f"vp-cookie-{op_id}", data=pending, height=0, on_written_change=lambda: _written(op_id))
