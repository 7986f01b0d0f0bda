"""Admin: the audit log — every admin action, newest first (append-only: nothing can change or remove an entry)."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.admin_pages import require_admin
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error

st.title("Audit log")
require_admin()
subject = st.text_input("Only this persona, report or account id", placeholder="all")
before = st.session_state.get("vp_audit_before")
with session.client() as api:
    try:
        page = api.admin_audit(before=before, subject=subject or None)
    except ApiError as err:
        show_api_error(err, context="Could not load the audit log")
        st.stop()
rows = [
    {
        "When": e["createdAt"],
        "Admin": e["adminId"],
        "Action": e["action"],
        "Subject": f"{e['subjectType']} {e['subjectId']}",
        "Detail": ", ".join(f"{k}: {v}" for k, v in e["detail"].items() if v not in (None, "")),
    }
    for e in page["items"]
]
if rows:
    st.table(rows)
else:
    st.caption("No entries.")
newer_col, older_col = st.columns(2)
if before and newer_col.button("Newest"):
    st.session_state["vp_audit_before"] = None
    st.rerun()
if page["nextBefore"] and older_col.button("Older"):
    st.session_state["vp_audit_before"] = page["nextBefore"]
    st.rerun()
