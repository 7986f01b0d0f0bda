"""Notifications: the in-app feed (persona live/failed/under review, settlements, reports) and webhooks —
add one (its signing secret is shown once), see each delivery's attempts, replay one, delete one."""

from __future__ import annotations

import streamlit as st

from streamlit_app import notify_api, session
from streamlit_app.api_client import ApiError
from streamlit_app.notices import show_api_error

EVENTS = ["persona.live", "persona.failed", "persona.review", "settlement.confirmed", "report.resolved"]
TITLES = {
    "persona.live": "Persona is live",
    "persona.failed": "Persona failed",
    "persona.review": "Persona under review",
    "settlement.confirmed": "Settlement paid",
    "report.resolved": "Report resolved",
}


def show_feed() -> None:
    st.subheader("Feed")
    with session.client() as api:
        try:
            feed = notify_api.notifications(api)
        except ApiError as err:
            show_api_error(err, context="Could not load notifications")
            return
        if feed["unread"] and st.button(f"Mark {feed['unread']} as read", key="vp_mark_read"):
            notify_api.mark_read(api)
            st.rerun()
    if not feed["data"]:
        st.caption("Nothing yet: you'll see your personas going live, settlements and reports here.")
    for item in feed["data"]:
        data = item["data"]
        what = data.get("name") or data.get("settlementId") or data.get("personaId") or ""
        badge = "" if item["readAt"] else " :blue-badge[new]"
        st.markdown(
            f"**{TITLES.get(item['event'], item['event'])}** · {what}{badge}  \n`{item['createdAt']}`"
        )


def show_webhooks() -> None:
    st.subheader("Webhooks")
    st.caption(
        'Each event is POSTed as JSON with `VoxPersona-Signature: t=<unix>,v1=<HMAC-SHA256 of "<t>.<body>">` '
        "keyed with the webhook's secret; failed deliveries are retried with backoff."
    )
    with st.form("vp_new_webhook", clear_on_submit=True):
        url = st.text_input("Endpoint URL", placeholder="https://example.com/voxpersona")
        events = st.multiselect("Events", EVENTS, default=["persona.live", "persona.failed"])
        submitted = st.form_submit_button("Add webhook")
    with session.client() as api:
        if submitted:
            try:
                created = notify_api.create_webhook(api, url, events)
                st.success("Webhook added. Its signing secret is shown this once — store it now:")
                st.code(created["secret"], language=None)
            except ApiError as err:
                show_api_error(err, context="Could not add the webhook")
        try:
            hooks = notify_api.webhooks(api)
        except ApiError as err:
            show_api_error(err, context="Could not load webhooks")
            return
        for hook in hooks:
            with st.expander(f"{hook['url']} · {', '.join(hook['events'])}"):
                if st.button("Delete", key=f"vp_del_{hook['id']}"):
                    notify_api.delete_webhook(api, hook["id"])
                    st.rerun()
                for d in notify_api.deliveries(api, hook["id"]):
                    codes = ", ".join(str(a["statusCode"] or a["error"]) for a in d["log"]) or "not sent yet"
                    st.markdown(f"`{d['event']}` · **{d['status']}** · attempts: {codes}")
                    if st.button("Replay", key=f"vp_replay_{d['id']}"):
                        notify_api.replay(api, hook["id"], d["id"])
                        st.toast("Replay queued")


st.title("Notifications")
session.require_account()
show_feed()
show_webhooks()
