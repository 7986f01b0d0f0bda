"""VoxPersona app: `streamlit run streamlit_app/app.py` — talks to the platform at VOXPERSONA_API_URL."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this folder, not the repository root, on sys.path; make the package importable
# without an editable install too.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from streamlit_app import session  # noqa: E402
from streamlit_app.api_client import ApiError, PlatformClient  # noqa: E402


@st.cache_data(ttl=15, show_spinner=False)
def _health(base_url: str) -> str:
    with PlatformClient(base_url) as api:
        try:
            return api.health()["status"]
        except ApiError as err:
            return "unreachable" if err.status == 0 else f"error {err.status}"


def _sidebar() -> None:
    with session.client() as api:
        base_url = api.base_url
    status = _health(base_url)
    colour = {"ok": "green", "degraded": "orange"}.get(status, "red")
    st.sidebar.markdown(f"Platform :{colour}-badge[{status}]  \n`{base_url}`")
    me = session.account()
    if me:
        st.sidebar.markdown(f"Signed in as **{me['name']}** · {me['role']}")
    else:
        st.sidebar.caption("Not signed in")


def _admin_pages() -> dict[str, list[st.Page]]:
    """The admin section, for admin accounts only (the platform refuses everyone else anyway)."""
    me = session.account()
    if me is None or me["role"] != "admin":
        return {}
    return {
        "Admin": [
            st.Page("views/admin_reviews.py", title="Review queue", icon=":material/policy:"),
            st.Page("views/admin_reports.py", title="Reports", icon=":material/flag:"),
            st.Page("views/admin_bans.py", title="Bans", icon=":material/block:"),
            st.Page("views/admin_audit.py", title="Audit log", icon=":material/history:"),
        ]
    }


st.set_page_config(page_title="VoxPersona", page_icon=":material/record_voice_over:", layout="wide")
session.init()
navigation = st.navigation(
    {
        "Voices": [
            st.Page("views/discover.py", title="Discover", icon=":material/search:", default=True),
            st.Page("views/create.py", title="Create", icon=":material/mic:"),
            st.Page("views/my_personas.py", title="My personas", icon=":material/folder_shared:"),
            st.Page("views/persona.py", title="Persona", icon=":material/badge:"),
            st.Page("views/generate.py", title="Generate", icon=":material/graphic_eq:"),
            st.Page("views/chat.py", title="Chat", icon=":material/chat:"),
        ],
        "You": [
            st.Page("views/account.py", title="Account & billing", icon=":material/account_balance:"),
            st.Page("views/billing.py", title="Billing", icon=":material/receipt_long:"),
            st.Page("views/wallet.py", title="Wallet", icon=":material/account_balance_wallet:"),
            st.Page("views/notifications.py", title="Notifications", icon=":material/notifications:"),
            st.Page("views/privacy.py", title="Your data", icon=":material/shield_person:"),
        ],
        **_admin_pages(),
    }
)
_sidebar()
navigation.run()
