"""Persona page: details, sample audio, provenance and chain status; the creator can revoke it here, anyone else
signed in can report it to the admins."""

from __future__ import annotations

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Persona
from streamlit_app.dates import local_time
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error
from streamlit_app.pipeline import badge, is_final
from streamlit_app.progress import GENERATE_PAGE, follow_pipeline, show_outcome
from streamlit_app.samples import play_sample

PROVENANCE_TEXT = {
    "registered": ("green", "Registered on chain — the embedding on record matches this voice."),
    "pending": ("blue", "Registration on chain is pending."),
    "revoked": ("gray", "Revoked on chain by its creator."),
    "mismatch": ("red", "The on-chain record does not match this voice's embedding."),
    "unregistered": ("orange", "Not registered on chain."),
}


def details(persona: Persona) -> None:
    st.markdown(f"# {persona['name']} {badge(persona['status'])}")
    st.caption(
        f"by {persona['creator']['name'] or 'unknown'} · {persona['visibility']} · "
        f"{contract.language_name(persona['language'])} · "
        f"model {persona['model']} · created {local_time(persona['createdAt'])}"
    )
    if persona["tags"]:
        st.markdown(" ".join(f":violet-badge[{tag}]" for tag in persona["tags"]))
    if persona.get("description"):
        st.write(persona["description"])
    if persona.get("personaPrompt"):
        st.markdown(f"**Persona prompt** — {persona['personaPrompt']}")
    price_col, calls_col = st.columns(2)
    price_col.metric("Price per 10k characters", format_cny(persona["pricePer10kChars"]))
    calls_col.metric("Calls", f"{persona['calls']:,}")


def provenance(persona: Persona) -> None:
    st.subheader("Provenance")
    embedding = persona.get("embedding")
    if embedding:
        trained = "pretrained" if embedding["pretrained"] else "not pretrained"
        st.markdown(
            f"Embedding by **{embedding['encoder']}** v{embedding['version']} ({trained})  \n"
            f"hash `{embedding['hash']}`"
        )
    chain = persona.get("chain")
    if chain:
        st.markdown(
            f"Chain: **{chain['status']}**" + (f" · tx `{chain['txHash']}`" if chain["txHash"] else "")
        )
    with session.client() as api:
        try:
            record = api.provenance(persona["id"])
        except ApiError as err:
            show_api_error(err, context="Provenance unavailable")
            return
    colour, text = PROVENANCE_TEXT.get(record["status"], ("gray", record["status"]))
    st.markdown(f":{colour}-badge[{record['status']}] {text}")
    on_chain = record.get("chainRecord") or record.get("chain")
    if on_chain:
        with st.expander("On-chain record"):
            st.json(on_chain)


def revoke(persona: Persona) -> None:
    st.subheader("Revoke")
    st.caption("Stops its speech at once, deletes its audio and embedding, revokes it on chain.")
    sure = st.checkbox(f"I want to revoke **{persona['name']}** permanently")
    if st.button("Revoke persona", type="primary", disabled=not sure, icon=":material/delete:"):
        with session.client() as api:
            try:
                api.revoke_voice(persona["id"])
            except ApiError as err:
                show_api_error(err, context="Not revoked")
                return
        st.rerun()


REASON_WORDS = {  # plain words for the reasons the platform lists (GET /v1/limits → reports.reasons)
    "impersonation": "It uses someone else's voice",
    "offensive": "It is offensive or abusive",
    "scam": "It is used for scams or fraud",
    "other": "Something else",
}


def report(persona: Persona) -> None:
    st.subheader("Report")
    with st.form("report"):
        terms = contract.limits().get("reports") or {"reasons": list(REASON_WORDS), "detailsMaxChars": 2000}
        reason = st.radio(
            "What is wrong?", terms["reasons"], format_func=lambda r: REASON_WORDS.get(r, r.capitalize())
        )
        details = st.text_area("Details (optional)", max_chars=terms["detailsMaxChars"])
        if not st.form_submit_button("Report persona", icon=":material/flag:"):
            return
    with session.client() as api:
        try:
            api.report_voice(persona["id"], reason, details)
        except ApiError as err:
            show_api_error(err, context="Not reported")
            return
    st.success("Thank you — an admin will look at it. You will be told the outcome.", icon=":material/flag:")


voice_id = st.query_params.get("id") or st.text_input("Persona id", placeholder="paste a persona id")
if not voice_id:
    st.info("Open a persona from **Discover**, or paste its id above.")
    st.stop()
st.query_params["id"] = voice_id  # bookmarkable

me = session.account()
pipeline = contract.limits()["pipeline"]
with session.client() as api:
    try:
        persona = api.get_voice(voice_id)
    except ApiError as err:
        show_api_error(err, context="Could not load this persona")
        st.stop()

details(persona)
if persona["status"] == "review":
    st.info(
        "An admin is reviewing this persona: its voice sounds very like another creator's persona. It is "
        "cloned only once approved.",
        icon=":material/policy:",
    )
elif is_final(persona["status"], pipeline):
    show_outcome(persona)
else:
    follow_pipeline(persona["id"])
if persona["status"] == "live":
    play_sample(persona)
    if st.button("Generate speech with this voice", icon=":material/graphic_eq:"):
        st.switch_page(GENERATE_PAGE, query_params={"voice": persona["id"]})
st.divider()
provenance(persona)
if me is not None and me["id"] == persona["creator"]["id"] and persona["status"] != "revoked":
    st.divider()
    revoke(persona)
elif me is not None and persona["status"] != "revoked":
    st.divider()
    report(persona)
