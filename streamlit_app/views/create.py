"""Create: upload or record a few seconds of speech, describe the persona, attest consent, follow the pipeline.

The upload limits, the form's lengths and choices and the pipeline's steps are the platform's
(`GET /v1/limits` → `upload`, `persona`, `pipeline`); so are the price terms: a creator picks a multiplier of
each model's list price within `prices.multiplierBpsMin/Max`, and creating holds `prices.cloneFee` from their
balance (a `402` when it can't be held is explained in plain words).

What this page keeps between reruns is kept per signed-in account (`_mine`): switching accounts never shows the
previous account's pipeline or uploads. A consumer learns before the form that creating needs a creator account.
Public and unlisted personas need a recorded, verified consent sentence (`consent_widget.render_consent`).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, FileIntake, PersonaLimits, PipelineLimits, Prices, UploadLimits
from streamlit_app.consent_widget import render_consent
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error, show_short_of_money, small_code
from streamlit_app.pipeline import is_final
from streamlit_app.progress import GENERATE_PAGE, PERSONA_PAGE, follow_pipeline, show_outcome
from streamlit_app.samples import play_sample

CONSENT_STATEMENT = (
    "I am the person speaking in this recording, or I have their explicit permission to create an AI voice "
    "persona from it, and I understand others may call it for speech."
)
_STATE = "vp_create"  # account id → this page's state for that account (see `_mine`)
_CREATING = "voice"  # {"voiceId", "jobId"} of the persona being created
_INTAKES = "intakes"  # sha256 of the audio → intake report or ApiError
_IDEMPOTENCY = "idempotency_key"
MULTIPLIER_STEP_BPS = 500  # the slider's notches (0.05×); the bounds themselves are the platform's
ACCOUNT_PAGE = "views/account.py"
VERIFIED_CONSENT = ("public", "unlisted")  # visibilities the platform creates only with a verified consent


def _mine() -> dict[str, Any]:
    """This page's state for the signed-in account only."""
    me = session.account()
    owner = me["id"] if me else ""
    per_account: dict[str, dict[str, Any]] = st.session_state.setdefault(_STATE, {})
    return per_account.setdefault(owner, {})


def intake(name: str, content: bytes, content_type: str) -> FileIntake | ApiError:
    """`POST /files` once per distinct audio in this session: reruns reuse the answer."""
    digest = hashlib.sha256(content).hexdigest()
    reports: dict[str, FileIntake | ApiError] = _mine().setdefault(_INTAKES, {})
    if digest not in reports:
        with st.spinner("Checking the audio…"), session.client() as api:
            try:
                reports[digest] = api.upload_file(name, content, content_type)
            except ApiError as err:
                reports[digest] = err
    return reports[digest]


def show_intake(report: FileIntake) -> None:
    st.success(
        f"Audio accepted: {report['duration']:.1f} s · {report['sampleRate']:,} Hz · "
        f"{report['channels']} ch · {report['format'].upper()}",
        icon=":material/check_circle:",
    )
    for hint in report.get("hints") or []:
        st.caption(f"💡 {hint}")
    match = report.get("impersonation")
    if match:
        st.warning(
            f"This voice closely matches the existing persona **{match['name']}** "
            f"(similarity {match['cosine']:.2f}). Only create it if it is your own voice.",
            icon=":material/warning:",
        )


def audio_step(upload: UploadLimits) -> FileIntake | None:
    st.subheader("1 · Your voice")
    window, size = contract.duration_window(upload), contract.mib(upload["maxBytes"])
    source = st.radio("Voice sample", ["Upload a file", "Record"], horizontal=True)
    audio: Any
    if source == "Upload a file":
        audio = st.file_uploader(
            f"{contract.formats_text(upload['formats'])} — {window} of your speech",
            type=upload["formats"],
            max_upload_size=contract.upload_mb(upload),
        )
    else:
        audio = st.audio_input(f"Record {window} — read a sentence or two naturally")
    # Streamlit's own limit text is in whole MB; this is the platform's exact limit.
    st.caption(f"The platform accepts up to **{size}** per file and **{window}** of speech.")
    if audio is None:
        st.caption("Speak alone, in a quiet room, close to the microphone.")
        return None
    content = audio.getvalue()
    if len(content) > upload["maxBytes"]:  # refused here, before sending it
        st.error(
            f"This file is {contract.mib(len(content))}; the platform accepts at most {size}. "
            f"Trim it to {window} of speech.  \n{small_code('file_too_large')}",
            icon=":material/error:",
        )
        return None
    if source == "Upload a file":  # a recording has its own player; a file is heard here before it is sent
        st.audio(content, format=audio.type or "audio/wav")
    report = intake(audio.name, content, audio.type or "application/octet-stream")
    if isinstance(report, ApiError):
        show_api_error(report, context="This audio can't be used")
        return None
    show_intake(report)
    return report


def tag_list(tags_text: str) -> list[str]:
    return [t.strip() for t in tags_text.split(",") if t.strip()]


def list_prices(prices: Prices, models: list[str]) -> str:
    listed = prices["listPricePer10kChars"]
    return ", ".join(f"{m} {format_cny(listed[m])}" for m in models if m in listed)


def multiplier_options(prices: Prices) -> list[int]:
    """The multipliers offered, in basis points: the platform's bounds, 1× and the notches between."""
    low, high = prices["multiplierBpsMin"], prices["multiplierBpsMax"]
    notches = range(-(-low // MULTIPLIER_STEP_BPS) * MULTIPLIER_STEP_BPS, high + 1, MULTIPLIER_STEP_BPS)
    return sorted({low, high, *notches, *([10_000] if low <= 10_000 <= high else [])})


def multiplier_text(bps: int) -> str:
    return f"{bps / 10_000:g}×"


def clone_fee_text(prices: Prices) -> str:
    fee = prices["cloneFee"]
    if not fee:
        return "Creating a persona is free."
    return (
        f"Creating this persona holds the clone fee of **{format_cny(fee)}** from your balance; it is charged "
        "when the voice is cloned (never for a voice the provider already had) and given back if creation fails."
    )


def consent_step(report: FileIntake | None, persona: PersonaLimits) -> tuple[str, str, str | None]:
    """Visibility and language first: public and unlisted personas need the consent sentence recorded in the
    creator's voice (a verified challenge) before the form is sent."""
    st.subheader("2 · Who may use it")
    left, right = st.columns(2)
    options = persona["visibilities"]
    visibility = str(  # private first: it needs nothing more, and nothing is listed by surprise
        left.selectbox(
            "Visibility",
            options,
            index=options.index("private") if "private" in options else 0,
            format_func=contract.visibility_text,
        )
    )
    language = str(right.selectbox("Language", persona["languages"], format_func=contract.language_name))
    if visibility not in VERIFIED_CONSENT:
        return visibility, language, None
    if report is None:
        st.caption(
            "A public or unlisted persona needs your consent sentence recorded after the voice sample."
        )
        return visibility, language, None
    with session.client() as api:
        challenge_id = render_consent(api, report["fileId"], language)
    return visibility, language, challenge_id


def details_step(
    report: FileIntake | None,
    persona: PersonaLimits,
    prices: Prices,
    who: tuple[str, str, str | None],
) -> None:
    visibility, language, challenge_id = who
    st.subheader("3 · The persona")
    with st.form("persona"):
        name = st.text_input("Name *", max_chars=persona["nameMaxChars"], placeholder="e.g. Calm Narrator")
        description = st.text_area(
            "Description", max_chars=persona["descriptionMaxChars"], placeholder="What this voice is good for"
        )
        persona_prompt = st.text_area(
            "Persona prompt",
            max_chars=persona["promptMaxChars"],
            placeholder="Speaking style, character, pace…",
        )
        tags_text = st.text_input(
            "Tags",
            placeholder="comma-separated, e.g. narrator, calm",
            help=f"Up to {persona['maxTags']} tags of at most {persona['tagMaxChars']} characters each.",
        )
        model = st.selectbox("Voice model", persona["models"])
        options = multiplier_options(prices)
        multiplier = st.select_slider(
            "Price multiplier",
            options=options,
            value=10_000 if 10_000 in options else options[0],
            format_func=multiplier_text,
            help="Callers pay each model's list price times this multiplier "
            f"(list prices per 10,000 characters: {list_prices(prices, persona['models'])}); "
            f"allowed {multiplier_text(options[0])}–{multiplier_text(options[-1])}.",
        )
        st.caption(clone_fee_text(prices))
        transcript = st.text_area(
            "Transcript of the recording (optional — improves cloning)",
            max_chars=persona["transcriptMaxChars"],
        )
        sample_text = st.text_input(
            f"Preview sentence (≤ {persona['sampleTextMaxChars']} characters)",
            max_chars=persona["sampleTextMaxChars"],
        )
        st.markdown("**Consent**")
        statement = st.text_area("Consent statement", value=CONSENT_STATEMENT)
        attested = st.checkbox("I attest to the statement above")
        submitted = st.form_submit_button("Create persona", type="primary", icon=":material/auto_awesome:")

    if not submitted:
        return
    problems = []
    if report is None:
        problems.append("Add a voice sample the platform accepts (step 1).")
    if not name.strip():
        problems.append("Give the persona a name.")
    tags = tag_list(tags_text)
    if len(tags) > persona["maxTags"]:
        problems.append(f"Use at most {persona['maxTags']} tags.")
    long_tags = [t for t in tags if len(t) > persona["tagMaxChars"]]
    if long_tags:
        problems.append(f"Tags have at most {persona['tagMaxChars']} characters: {', '.join(long_tags)}.")
    if not attested or not statement.strip():
        problems.append("Consent is required: tick the attestation box.")
    if visibility in VERIFIED_CONSENT and not challenge_id:
        problems.append(
            f"A {visibility} persona needs your consent sentence recorded and verified (step 2) — "
            "or choose Private."
        )
    if problems:
        st.error("  \n".join(problems), icon=":material/error:")
        return
    assert report is not None
    mine = _mine()
    idempotency_key = mine.setdefault(_IDEMPOTENCY, str(uuid.uuid4()))
    consent: dict[str, Any] = {"attested": True, "statement": statement.strip()}
    if challenge_id:
        consent["challengeId"] = challenge_id
    with session.client() as api:
        try:
            created = api.create_voice(
                file_id=report["fileId"],
                name=name.strip(),
                description=description.strip() or None,
                persona_prompt=persona_prompt.strip() or None,
                tags=tags or None,
                language=language,
                visibility=visibility,
                price_multiplier_bps=int(multiplier),
                model=model,
                text=transcript.strip() or None,
                sample_text=sample_text.strip() or None,
                consent=consent,  # type: ignore[arg-type]
                idempotency_key=idempotency_key,
            )
        except ApiError as err:
            if err.code == "insufficient_balance":
                show_short_of_money(
                    err,
                    "the clone fee is",
                    "Nothing was created.",
                    purpose=" to create a persona",
                    needed_otherwise=prices["cloneFee"],
                )
            else:
                show_api_error(err, context="The persona was not created")
            if err.status in (402, 409):  # same key, different body: the next click is a new request
                mine.pop(_IDEMPOTENCY, None)
            return
    mine.pop(_IDEMPOTENCY, None)
    mine[_CREATING] = {"voiceId": created["voiceId"], "jobId": created["jobId"]}
    st.rerun()


def pipeline_step(voice_id: str, job_id: str | None, pipeline: PipelineLimits) -> None:
    st.subheader("4 · Bringing it to life")
    st.caption(f"Persona id `{voice_id}`")
    with session.client() as api:
        try:
            persona = api.get_voice(voice_id)
        except ApiError as err:
            show_api_error(err, context="Could not read the persona")
            persona = None
    if persona is not None and is_final(persona["status"], pipeline):
        show_outcome(persona)
        if persona["status"] == "live":
            play_sample(persona)
            open_col, speak_col, _ = st.columns([1, 1, 3])
            if open_col.button("Open persona page", icon=":material/open_in_new:"):
                st.switch_page(PERSONA_PAGE, query_params={"id": voice_id})
            if speak_col.button("Generate speech", icon=":material/graphic_eq:"):
                st.switch_page(GENERATE_PAGE, query_params={"voice": voice_id})
    elif persona is not None:
        follow_pipeline(voice_id, job_id)
    if st.button("Create another persona", icon=":material/add:"):
        _mine()[_CREATING] = None
        st.rerun()


def creator_check(role: str) -> None:
    """Before any form: only creators (and admins) publish personas; say so, and where to get such an account."""
    if role in ("creator", "admin"):
        return
    st.info(
        "Publishing personas needs a **creator** account; you are signed in as a "
        f"**{role}**, who can discover personas and generate speech. Sign up as a creator on "
        "**Account & billing** (or sign in with a creator's key) to create one.",
        icon=":material/info:",
    )
    st.page_link(ACCOUNT_PAGE, label="Go to Account & billing", icon=":material/person:")
    st.stop()


st.title("Create a voice persona")
me = session.require_account()
creator_check(me["role"])
limits = contract.limits()
creating = _mine().get(_CREATING)
if creating:
    pipeline_step(creating["voiceId"], creating.get("jobId"), limits["pipeline"])
else:
    report = audio_step(limits["upload"])
    who = consent_step(report, limits["persona"])
    details_step(report, limits["persona"], limits["prices"], who)
