"""Generate: text → speech with a persona; the price before the call, then the audio, characters billed and cost.

The text limit, models, formats, speed/volume ranges and the voice labels each model takes (as choices, glossed
in English) are the platform's (`GET /v1/limits` → `tts`); the price is the platform's quote (`GET /quotes`) for the text typed and the model chosen (asked again
only when they change) — exactly what the call is then taken from the balance for. A call the balance can't pay
for (`402 insufficient_balance`) is explained in plain words with where to top up.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import (
    ApiError,
    Balance,
    Persona,
    PlatformClient,
    Quote,
    Range,
    Speech,
    VoiceLabel,
)
from streamlit_app.money import exactly, format_cny
from streamlit_app.notices import TOP_UP_HINT, show_api_error, show_short_of_money

PLAYABLE = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg"}
_RESULT = "vp_generate_result"
_QUOTE = (
    "vp_generate_quote"  # the last quote asked: {"key": (voice, model, chars), "quote": Quote | ApiError}
)


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


def quote(voice_id: str, chars: int, model: str | None = None) -> Quote | ApiError:
    """The platform's price for `chars` characters with this persona and model; asked only when they change."""
    key = (voice_id, model, chars)
    last: dict[str, Any] | None = st.session_state.get(_QUOTE)
    if last is None or last["key"] != key:
        with session.client() as api:
            try:
                answer: Quote | ApiError = api.quote(voice_id, chars, model)
            except ApiError as err:
                answer = err
        last = st.session_state[_QUOTE] = {"key": key, "quote": answer}
    return last["quote"]  # type: ignore[no-any-return]


def balance() -> Balance | None:
    with session.client() as api:
        try:
            return api.balance()
        except ApiError:
            return None


def show_price(voice_id: str, model: str, text: str, funds: Balance | None) -> None:
    """The price of this call before it is made, and whether the balance covers it."""
    if not text:
        return
    answer = quote(voice_id, len(text), model)
    if isinstance(answer, ApiError):
        st.caption(f"No price: `{answer.code}` — {answer.message}")
        return
    st.markdown(
        f"Price: **{format_cny(answer['amount'])}** for {answer['chars']:,} characters with {answer['model']} "
        f"({format_cny(answer['unitPrice'])} per 10,000) — taken from your balance when you click Generate.",
        help=exactly(answer["amount"], answer["unitPrice"]),
    )
    if funds is not None and answer["amount"] > funds["available"]:
        st.warning(
            f"Your balance ({format_cny(funds['available'])}) does not cover this call "
            f"({format_cny(answer['amount'])}). {TOP_UP_HINT}",
            icon=":material/account_balance_wallet:",
        )


def slider(column: Any, name: str, bounds: Range) -> float:
    low, high = float(bounds["min"]), float(bounds["max"])
    return float(column.slider(name, low, high, min(max(1.0, low), high), 0.1))


def show_result(result: dict[str, Any]) -> None:
    speech: Speech = result["speech"]
    persona: Persona = result["persona"]
    fmt: str = result["format"]
    if fmt in PLAYABLE:
        st.audio(speech.audio, format=PLAYABLE[fmt], autoplay=True)
    else:
        st.caption(f"{fmt.upper()} can't be played in the browser — download it below.")
    chars = speech.usage_chars if speech.usage_chars is not None else result["chars"]
    chars_col, cost_col, size_col = st.columns(3)
    chars_col.metric("Characters billed", f"{chars:,}")
    if result["amount"] is not None:
        cost_col.metric("Cost", format_cny(result["amount"]), help=exactly(result["amount"]))
    else:  # the ledger has not caught up yet: the platform's quote for the characters billed
        estimate = quote(persona["id"], chars, result.get("model"))
        if isinstance(estimate, ApiError):
            cost_col.metric("Cost (estimated)", "n/a")
        else:
            cost_col.metric(
                "Cost (estimated)", format_cny(estimate["amount"]), help=exactly(estimate["amount"])
            )
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
tts = contract.limits()["tts"]
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
multiplier = persona.get("priceMultiplierBps")
st.caption(
    f"{format_cny(persona['pricePer10kChars'])} per 10,000 characters with {persona['model']}"
    + (f" · {multiplier / 10_000:g}× the list price" if multiplier else ""),
    help=exactly(persona["pricePer10kChars"]),
)
funds = balance()
if funds is not None:
    st.metric("Balance", format_cny(funds["available"]), help=exactly(funds["available"]))

# No form: the price follows the text and the model, and the label and instruction fields follow the model.
text = st.text_area(
    "Text",
    max_chars=tts["maxChars"],  # the platform's limit: the counter stops where the platform would refuse
    height=150,
    placeholder=f"What should this voice say? Up to {tts['maxChars']:,} characters.",
)
model_col, format_col = st.columns(2)
models = tts["models"]
model = model_col.selectbox(
    "Model", models, index=models.index(persona["model"]) if persona["model"] in models else 0
)
fmt = format_col.selectbox("Format", tts["formats"])
speed_col, volume_col = st.columns(2)
speed = slider(speed_col, "Speed", tts["speed"])
volume = slider(volume_col, "Volume", tts["volume"])
label: VoiceLabel | None = None
instruction: str | None = None
labels = contract.model_labels(tts, model)
if model in tts["instructionModels"]:
    instruction = st.text_input(
        "Instruction (optional)",
        max_chars=tts["instructionMaxChars"],
        placeholder="e.g. read slowly, like a story",
        help=f"{model} takes a spoken instruction instead of a voice label.",
    )
elif labels:
    kind_col, value_col = st.columns(2)
    label_kind = kind_col.selectbox(
        "Voice label",
        ["none", *labels],
        format_func=lambda kind: "No label" if kind == "none" else kind.capitalize(),
        help=f"One of language, emotion or style — the values {model} accepts.",
    )
    label_value = value_col.selectbox(
        "Label value",
        labels.get(label_kind, []),
        format_func=lambda value: contract.label_text(tts, value),
        disabled=label_kind not in labels,
        key=f"label-{model}-{label_kind}",  # a new model or kind starts from its own first value
    )
    if label_kind in labels and label_value:
        label = cast(VoiceLabel, {label_kind: label_value})
else:
    st.caption(f"{model} takes no voice label.")
show_price(voice_id, model, text, funds)
submitted = st.button("Generate", type="primary", icon=":material/graphic_eq:")

if submitted:
    if not text.strip():
        st.error("Type some text to speak.", icon=":material/error:")
    else:
        with st.spinner("Speaking…"), session.client() as api:
            try:
                speech = api.synthesize(
                    voice=voice_id,
                    text=text,
                    model=model,
                    audio_format=fmt,
                    speed=speed,
                    volume=volume,
                    voice_label=label,
                    instruction=(instruction or "").strip() or None,
                    idempotency_key=str(uuid.uuid4()),
                )
            except ApiError as err:
                if err.code == "insufficient_balance":
                    show_short_of_money(err, "this call costs", "Nothing was spoken and nothing was charged.")
                else:
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
            "model": model,
        }
        st.rerun()  # the balance at the top now shows what the call took

result = st.session_state.get(_RESULT)
if result:
    show_result(result)
