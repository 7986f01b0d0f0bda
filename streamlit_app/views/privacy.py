"""Privacy: download everything we hold about you (a zip), or erase your account."""

from __future__ import annotations

import streamlit as st

from streamlit_app import notify_api, session
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error

st.title("Your data")
me = session.require_account()

st.subheader("Export")
st.write("A zip of your account, uploads (with their audio), personas, usage, statements and conversations.")
if st.button("Prepare export", key="vp_export"):
    with session.client() as api:
        try:
            st.session_state["vp_export_zip"] = notify_api.export_account(api)
        except ApiError as err:
            show_api_error(err, context="Could not export your data")
if st.session_state.get("vp_export_zip"):
    st.download_button(
        "Download zip",
        st.session_state["vp_export_zip"],
        file_name=f"voxpersona-{me['id']}.zip",
        mime="application/zip",
    )

st.subheader("Delete account")
st.warning(
    "This revokes every persona (their provider files are deleted and voices retired), deletes your uploads and "
    "texts, and signs you out everywhere. The ledger keeps its rows under a pseudonymous id. It can't be undone."
)
confirm = st.text_input("Type your email to confirm", key="vp_erase_confirm")
if st.button("Delete my account", type="primary", disabled=confirm.strip().lower() != me["email"].lower()):
    with session.client() as api:
        try:
            erased = notify_api.erase_account(api)
        except ApiError as err:
            show_api_error(err, context="Could not delete the account")
            st.stop()
    st.success(f"Account erased; {erased['personasRevoked']} personas revoked.")
    session.sign_out()
