"""Persona sample audio, fetched with the caller's key and kept for the session, per signed-in account."""

from __future__ import annotations

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ApiError, Persona
from streamlit_app.notices import show_api_error

_CACHE = "vp_sample_audio"


def play_sample(persona: Persona, *, autoplay: bool = False) -> None:
    """Show an audio player for the persona's sample, or say why there is none."""
    url = persona.get("sampleAudioUrl")
    if not url:
        st.caption("No sample yet.")
        return
    me = session.account()
    per_account: dict[str, dict[str, bytes]] = st.session_state.setdefault(_CACHE, {})
    cache = per_account.setdefault(me["id"] if me else "", {})  # another account signing in fetches again
    if url not in cache:
        with session.client() as api:
            try:
                cache[url] = api.sample_audio(url)
            except ApiError as err:
                show_api_error(err, context="Sample unavailable")
                return
    st.audio(cache[url], format="audio/wav", autoplay=autoplay)
