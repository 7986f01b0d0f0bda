"""Shared by the admin pages (views/admin_*.py): only an admin account gets past `require_admin()`."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import Account


def require_admin() -> Account:
    me = session.account()
    if me is None or me["role"] != "admin":
        st.warning("This page is for admins. Admin accounts are made with `python -m scripts.admin create`.")
        st.stop()
    return me
