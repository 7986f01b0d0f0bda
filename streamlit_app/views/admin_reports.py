"""Admin: reports of personas — take the persona down (revoked at once and on chain; every open report on it is
resolved) or dismiss the report."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.admin_pages import require_admin
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error

st.title("Reports")
require_admin()
status = st.segmented_control("Show", ["open", "taken_down", "dismissed"], default="open") or "open"
with session.client() as api:
    try:
        reports = api.admin_reports(status)
    except ApiError as err:
        show_api_error(err, context="Could not load the reports")
        st.stop()
if not reports:
    st.success(f"No {status.replace('_', ' ')} reports.", icon=":material/task_alt:")
    st.stop()
for report in reports:
    with st.container(border=True):
        st.markdown(f"### {report['personaName'] or report['personaId']} · :orange-badge[{report['reason']}]")
        st.caption(
            f"`{report['id']}` on `{report['personaId']}` by `{report['reporterId']}` · {report['createdAt']}"
        )
        if report["details"]:
            st.write(report["details"])
        if report["status"] != "open":
            st.caption(f"{report['status']} by `{report['resolvedBy']}`: {report['resolutionNote'] or ''}")
            continue
        note = st.text_input("Note", key=f"note-{report['id']}")
        down_col, dismiss_col = st.columns(2)
        for col, action, title in ((down_col, "takedown", "Take down"), (dismiss_col, "dismiss", "Dismiss")):
            if col.button(
                title, key=f"{action}-{report['id']}", type="primary" if action == "takedown" else "secondary"
            ):
                with session.client() as api:
                    try:
                        api.admin_resolve(report["id"], action, note)
                    except ApiError as err:
                        show_api_error(err, context="Not resolved")
                        st.stop()
                st.rerun()
