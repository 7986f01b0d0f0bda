"""Verified consent in the browser: the creator reads a random sentence aloud (st.audio_input), the platform
checks the speaker is the upload's. Used by the Create page for public and unlisted personas.

No speech recogniser runs offline, so only who speaks is checked, not what is said.
"""

from __future__ import annotations

import streamlit as st

from streamlit_app import notify_api
from streamlit_app.api_client import ApiError, PlatformClient
from streamlit_app.notices import show_api_error


def render_consent(api: PlatformClient, file_id: str, language: str) -> str | None:
    """Show the sentence to read for upload `file_id`, record it, post it; returns the verified challengeId
    (keep it for POST /voices `consent.challengeId`), or None until the recording is verified."""
    key = f"vp_consent_{file_id}"
    verified: str | None = st.session_state.get(f"{key}_verified")
    if verified:
        st.success("Consent verified: the recording is the uploaded speaker.", icon=":material/verified:")
        return verified
    challenge = st.session_state.get(key)
    if challenge is None or st.button("New sentence", key=f"{key}_new"):
        try:
            challenge = notify_api.consent_challenge(api, file_id, language)
        except ApiError as err:
            show_api_error(err, context="Could not start the consent check")
            return None
        st.session_state[key] = challenge
    st.markdown("**Read this sentence aloud** (2–15 seconds) so we can check the uploaded voice is yours:")
    st.info(challenge["sentence"], icon=":material/record_voice_over:")
    st.caption("Only the speaker is compared with your upload; the words are not transcribed.")
    recording = st.audio_input("Record the sentence", key=f"{key}_audio_{challenge['challengeId']}")
    if recording is None:
        return None
    try:
        result = notify_api.consent_recording(
            api, challenge["challengeId"], recording.getvalue(), recording.name or "consent.wav"
        )
    except ApiError as err:
        show_api_error(err, context="Could not check the recording")
        return None
    if result["verified"]:
        st.session_state[f"{key}_verified"] = challenge["challengeId"]
        st.success(
            f"Consent verified (similarity {result['cosine']:.3f} ≥ {result['threshold']:.3f}).",
            icon=":material/verified:",
        )
        return str(challenge["challengeId"])
    st.error(
        f"That recording does not sound like the uploaded speaker (similarity {result['cosine']:.3f}, "
        f"needs {result['threshold']:.3f}); {result['attemptsLeft']} tries left for this sentence.",
        icon=":material/block:",
    )
    return None
