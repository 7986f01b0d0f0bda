"""Admin: the impersonation review queue — personas whose voice is within the calibrated threshold of another
creator's live persona wait here; approve (it is cloned and goes live) or reject (it fails, the fee goes back)."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.admin_pages import require_admin
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error

st.title("Review queue")
require_admin()
with session.client() as api:
    try:
        queue = api.admin_reviews()
    except ApiError as err:
        show_api_error(err, context="Could not load the queue")
        st.stop()
if not queue:
    st.success("Nothing waits for review.", icon=":material/task_alt:")
    st.stop()
for item in queue:
    with st.container(border=True):
        st.markdown(f"### {item['name']}")
        st.markdown(
            f"by **{item['creatorName'] or item['creatorId']}** sounds like **{item['impersonationName']}** "
            f"(`{item['impersonationOf']}`, by `{item['impersonationCreatorId']}`) · cosine **{item['cosine']:.3f}**"
        )
        st.caption(f"`{item['personaId']}` · created {item['createdAt']}")
        note = st.text_input("Note (shown to the creator)", key=f"note-{item['personaId']}")
        approve_col, reject_col = st.columns(2)
        for col, approve, title in ((approve_col, True, "Approve"), (reject_col, False, "Reject")):
            if col.button(
                title, key=f"{title}-{item['personaId']}", type="primary" if approve else "secondary"
            ):
                with session.client() as api:
                    try:
                        api.admin_decide(item["personaId"], approve, note)
                    except ApiError as err:
                        show_api_error(err, context=f"Not {title.lower()}d")
                        st.stop()
                st.rerun()
