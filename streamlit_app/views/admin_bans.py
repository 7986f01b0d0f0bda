"""Admin: ban an account (every key of it stops working at once) or lift a ban."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.admin_pages import require_admin
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error


def _set(account_id: str, banned: bool, reason: str) -> None:
    with session.client() as api:
        try:
            api.admin_ban(account_id, banned, reason)
        except ApiError as err:
            show_api_error(err, context="Not changed")
            st.stop()
    st.rerun()


st.title("Bans")
require_admin()
with st.form("find"):
    email = st.text_input("Account email")
    reason = st.text_input("Reason")
    if st.form_submit_button("Ban account", type="primary", icon=":material/block:") and email:
        with session.client() as api:
            try:
                found = api.admin_accounts(email=email)
            except ApiError as err:
                show_api_error(err, context="Could not look the account up")
                st.stop()
        if not found:
            st.error(f"No account with the email {email}.")
        else:
            _set(found[0]["id"], True, reason)

st.subheader("Banned accounts")
with session.client() as api:
    try:
        banned = api.admin_accounts(banned=True)
    except ApiError as err:
        show_api_error(err, context="Could not load the banned accounts")
        st.stop()
if not banned:
    st.caption("No account is banned.")
for account in banned:
    name_col, action_col = st.columns([3, 1])
    name_col.markdown(f"**{account['name']}** · {account['email']} · banned {account['bannedAt']}")
    if action_col.button("Lift ban", key=f"unban-{account['id']}"):
        _set(account["id"], False, "lifted from the Bans page")
