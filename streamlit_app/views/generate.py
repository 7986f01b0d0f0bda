"""Generate: text → speech with a persona; plays the audio and shows characters billed and what it cost."""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ApiError, Persona, PlatformClient, Speech, VoiceLabel
from streamlit_app.money import estimated_cost, format_cny
from streamlit_app.notices import show_api_error

MODELS = ("step-tts-mini", "step-tts-2", "stepaudio-2.5-tts")
FORMATS = ("wav", "mp3", "flac", "opus", "pcm")
PLAYABLE = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg"}
LABEL_KINDS = ("none", "emotion", "style", "language")
MAX_CHARS = 5000
_RESULT = "vp_generate_result"


def choices(api: PlatformClient, wanted: str | None) -> dict[str, Persona]:
    """Live personas the caller can pick from, plus the one asked for by id (it may be unlisted)."""
    options = {
        p["id"]: p for p in api.list_voices(sort="popular", limit=100)["data"] if p["status"] == "live"
    }
    if wanted and wanted not in options:
        options = {wanted: api.get_voice(wanted), **options}
    return options


def billed_amount(api: PlatformClient, request_id: str | None) -> int | None:
    """The ledger's amount for this request, when the usage report already has it."""
    if not request_id:
        return None
    try:
        calls = api.usage()["calls"]
    except ApiError:
        return None
    return next((c["amount"] for c in calls if c["requestId"] == request_id), None)


def show_result(result: dict[str, Any]) -> None:
    speech: Speech = result["speech"]
    persona: Persona = result["persona"]
    fmt: str = result["format"]
    if fmt in PLAYABLE:
        st.audio(speech.audio, format=PLAYABLE[fmt], autoplay=True)
    else:
        st.caption("Raw PCM can't be played in the browser — download it below.")
    chars = speech.usage_chars if speech.usage_chars is not None else result["chars"]
    chars_col, cost_col, size_col = st.columns(3)
    chars_col.metric("Characters billed", f"{chars:,}")
    if result["amount"] is not None:
        cost_col.metric("Cost", format_cny(result["amount"]))
    else:
        cost_col.metric("Cost (estimated)", format_cny(estimated_cost(chars, persona["pricePer10kChars"])))
    size_col.metric("Audio", f"{len(speech.audio) / 1024:,.0f} KiB")
    st.caption(f"Request `{speech.request_id or 'n/a'}` · {persona['name']} · {fmt}")
    st.download_button(
        "Download",
        speech.audio,
        file_name=f"{persona['name']}.{fmt}",
        mime=speech.content_type,
        on_click="ignore",
    )


st.title("Generate speech")
session.require_account()
wanted = st.query_params.get("voice")
with session.client() as api:
    try:
        personas = choices(api, wanted)
    except ApiError as err:
        show_api_error(err, context="Could not load personas")
        st.stop()
if not personas:
    st.info("No live personas yet — create one on **Create**.")
    st.stop()

ids = list(personas)
voice_id = st.selectbox(
    "Persona",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: f"{personas[i]['name']} — by {personas[i]['creator']['name'] or 'unknown'}",
)
persona = personas[voice_id]
st.caption(
    f"{format_cny(persona['pricePer10kChars'])} per 10,000 characters · default model {persona['model']}"
)

with st.form("speech"):
    text = st.text_area("Text", max_chars=MAX_CHARS, height=150, placeholder="What should this voice say?")
    model_col, format_col = st.columns(2)
    model = model_col.selectbox(
        "Model", MODELS, index=MODELS.index(persona["model"]) if persona["model"] in MODELS else 0
    )
    fmt = format_col.selectbox("Format", FORMATS)
    speed_col, volume_col = st.columns(2)
    speed = speed_col.slider("Speed", 0.5, 2.0, 1.0, 0.1)
    volume = volume_col.slider("Volume", 0.1, 2.0, 1.0, 0.1)
    kind_col, value_col = st.columns(2)
    label_kind = kind_col.selectbox("Voice label", LABEL_KINDS, help="emotion, style or language")
    label_value = value_col.text_input("Label value", placeholder="e.g. happy / whisper / Cantonese")
    instruction = st.text_input(
        "Instruction (optional)", max_chars=200, placeholder="e.g. read slowly, like a story"
    )
    submitted = st.form_submit_button("Generate", type="primary", icon=":material/graphic_eq:")

if submitted:
    if not text.strip():
        st.error("Type some text to speak.", icon=":material/error:")
    else:
        label: VoiceLabel | None = None
        if label_kind != "none" and label_value.strip():
            label = VoiceLabel(**{label_kind: label_value.strip()})  # type: ignore[misc]
        with st.spinner("Speaking…"), session.client() as api:
            try:
                speech = api.synthesize(
                    voice=voice_id,
                    text=text,
                    model=model,
                    audio_format=fmt,  # type: ignore[arg-type]
                    speed=speed,
                    volume=volume,
                    voice_label=label,
                    instruction=instruction.strip() or None,
                    idempotency_key=str(uuid.uuid4()),
                )
            except ApiError as err:
                show_api_error(err, context="No speech")
                st.session_state[_RESULT] = None
                st.stop()
            amount = billed_amount(api, speech.request_id)
        st.session_state[_RESULT] = {
            "speech": speech,
            "persona": persona,
            "format": fmt,
            "chars": len(text),
            "amount": amount,
        }

result = st.session_state.get(_RESULT)
if result:
    show_result(result)
