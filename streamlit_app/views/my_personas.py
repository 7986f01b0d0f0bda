"""My personas: every persona of yours with its state, a failure in plain words, and edit, retry and delete."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ApiError, Failure, Persona
from streamlit_app.dates import local_time
from streamlit_app.notices import plain, show_api_error
from streamlit_app.pipeline import badge, label
from streamlit_app.progress import PERSONA_PAGE

REVIEW_TEXT = (
    "An admin is reviewing this persona: its voice sounds very like another creator's persona. Nothing is "
    "cloned or charged until it is approved (the clone fee stays reserved)."
)
REJECTED = "impersonation_rejected"


def _state(persona: Persona) -> None:
    status = persona["status"]
    failure = persona.get("failure") or None
    if status == "review":
        st.info(REVIEW_TEXT, icon=":material/policy:")
    elif status == "failed" and failure:
        step = label(str(failure["step"])) if failure.get("step") else "a step"
        st.error(f"Failed at **{step}**: {plain(str(failure.get('message') or ''))}", icon=":material/error:")
    elif status == "revoked":
        st.caption("Revoked: it can no longer be called, and its audio and embedding are deleted.")
    for notice in persona.get("notices") or []:
        st.caption(notice)


def _edit(persona: Persona) -> None:
    with st.form(f"edit-{persona['id']}"):
        name = st.text_input("Name", value=persona["name"])
        description = st.text_area("Description", value=persona.get("description") or "")
        prompt = st.text_area("Persona prompt", value=persona.get("personaPrompt") or "")
        tags = st.text_input("Tags (comma-separated)", value=", ".join(persona["tags"]))
        visibility = st.selectbox(
            "Visibility",
            ["public", "unlisted", "private"],
            index=["public", "unlisted", "private"].index(persona["visibility"]),
        )
        multiplier = st.number_input(
            "Price multiplier (×)",
            min_value=0.01,
            value=persona.get("priceMultiplierBps", 10_000) / 10_000,
            step=0.25,
        )
        if not st.form_submit_button("Save changes", icon=":material/save:"):
            return
    wanted = {
        "name": name,
        "description": description,
        "personaPrompt": prompt,
        "tags": [t.strip() for t in tags.split(",") if t.strip()],
        "visibility": visibility,
        "priceMultiplierBps": round(multiplier * 10_000),
    }
    current = {
        "name": persona["name"],
        "description": persona.get("description") or "",
        "personaPrompt": persona.get("personaPrompt") or "",
        "tags": persona["tags"],
        "visibility": persona["visibility"],
        "priceMultiplierBps": persona.get("priceMultiplierBps", 10_000),
    }
    changes = {k: v for k, v in wanted.items() if v != current[k]}
    if not changes:
        st.info("Nothing changed.")
        return
    with session.client() as api:
        try:
            api.edit_voice(persona["id"], changes)
        except ApiError as err:
            show_api_error(err, context="Not saved")
            return
    st.toast("Saved", icon=":material/check:")
    st.rerun()


def _actions(persona: Persona) -> None:
    status = persona["status"]
    failure: Failure | dict[str, str] = persona.get("failure") or {}
    open_col, retry_col, delete_col = st.columns(3)
    if open_col.button("Open", key=f"open-{persona['id']}", icon=":material/open_in_new:"):
        st.switch_page(PERSONA_PAGE, query_params={"id": persona["id"]})
    retryable = status == "failed" and failure.get("code") != REJECTED
    if retryable and retry_col.button("Retry", key=f"retry-{persona['id']}", icon=":material/replay:"):
        with session.client() as api:
            try:
                api.retry_voice(persona["id"])
            except ApiError as err:
                show_api_error(err, context="Not retried")
                return
        st.rerun()
    if status != "revoked":
        sure = delete_col.checkbox("Delete permanently", key=f"sure-{persona['id']}")
        if delete_col.button(
            "Delete", key=f"delete-{persona['id']}", disabled=not sure, icon=":material/delete:"
        ):
            with session.client() as api:
                try:
                    api.revoke_voice(persona["id"])
                except ApiError as err:
                    show_api_error(err, context="Not deleted")
                    return
            st.rerun()


st.title("My personas")
me = session.account()
if me is None:
    st.info("Sign in on **Account & billing** to see your personas.")
    st.stop()
with session.client() as api:
    try:
        mine = api.my_voices()["data"]
    except ApiError as err:
        show_api_error(err, context="Could not load your personas")
        st.stop()
if not mine:
    st.info("You have no personas yet: create one on **Create**.")
    st.stop()
for persona in mine:
    with st.container(border=True):
        st.markdown(f"### {persona['name']} {badge(persona['status'])}")
        st.caption(
            f"`{persona['id']}` · {persona['visibility']} · created {local_time(persona['createdAt'])}"
        )
        _state(persona)
        _actions(persona)
        if persona["status"] != "revoked":
            with st.expander("Edit"):
                _edit(persona)
