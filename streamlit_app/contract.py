"""The platform's contract as the pages use it: `GET /v1/limits`, read once and cached, and how to show it.

Every limit, choice and pipeline state a page shows comes from `limits()`; nothing here repeats a number
the platform enforces. What stays in the UI is presentation only: human names for codes, MiB, seconds.
"""

from __future__ import annotations

import math

import streamlit as st

from streamlit_app.api_client import (
    ApiError,
    Limits,
    PlatformClient,
    TtsLimits,
    UploadLimits,
    base_url_from_env,
)
from streamlit_app.notices import show_api_error

LIMITS_TTL_S = 60  # short: a platform restarted with new limits is picked up within a minute

LANGUAGE_NAMES = {
    "en": "English",
    "zh": "Chinese",
}  # display names; the codes on offer come from the platform
VISIBILITY_TEXT = {
    "public": "Public — listed on Discover",
    "unlisted": "Unlisted — anyone with the id",
    "private": "Private — only me",
}
MIB = 1024 * 1024


@st.cache_data(ttl=LIMITS_TTL_S, show_spinner=False)
def _fetch_limits(base_url: str) -> Limits:
    """One `GET /v1/limits` per platform URL and TTL, shared by the sessions (it needs no key; errors are
    not cached, so the next run asks again)."""
    with PlatformClient(base_url) as api:
        return api.limits()


def clear_cache() -> None:
    """Forget the cached limits (tests that change the fake platform's limits call this)."""
    _fetch_limits.clear()


def limits() -> Limits:
    """The platform's limits, or stop the page with a clear error when it cannot say them."""
    base_url = base_url_from_env()
    try:
        return _fetch_limits(base_url)
    except ApiError as err:
        if err.status == 404:
            context = (
                f"The platform at `{base_url}` does not publish its limits (`GET /v1/limits` is missing — "
                "it is older than this front end; update it)"
            )
        else:
            context = "Could not read the platform's limits (`GET /v1/limits`)"
        show_api_error(err, context=context)
        st.stop()


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def visibility_text(visibility: str) -> str:
    return VISIBILITY_TEXT.get(visibility, visibility.capitalize())


def mib(size: int) -> str:
    """`20_971_520` → `"20 MiB"`, `1_572_864` → `"1.5 MiB"`, `100_000` → `"98 KiB"`."""
    if size < MIB:
        return f"{size / 1024:.0f} KiB"
    return f"{size / MIB:.1f}".removesuffix(".0") + " MiB"


def upload_mb(upload: UploadLimits) -> int:
    """The upload limit in whole MB for Streamlit's own uploader check (rounded up; ours is exact)."""
    return max(1, math.ceil(upload["maxBytes"] / MIB))


def seconds(value: float) -> str:
    return f"{value:g}"


def duration_window(upload: UploadLimits) -> str:
    """`"5–10 s"`."""
    return f"{seconds(upload['minSeconds'])}–{seconds(upload['maxSeconds'])} s"


def formats_text(formats: list[str]) -> str:
    """`["wav", "mp3"]` → `"WAV or MP3"`."""
    names = [f.upper() for f in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def model_labels(tts: TtsLimits, model: str) -> dict[str, list[str]]:
    """The voice labels `model` takes, by kind (empty for a model that takes an instruction instead): the
    platform's per-model lists, or — from a platform older than them — its one list for every label model."""
    if model in tts["instructionModels"]:
        return {}
    by_model = tts.get("modelLabels")
    kinds = by_model.get(model, {}) if by_model is not None else tts["voiceLabels"]
    return {kind: list(values) for kind, values in kinds.items() if values}


def label_text(tts: TtsLimits, value: str) -> str:
    """`"温柔"` → `"温柔 · gentle"` when the platform glosses it."""
    gloss = (tts.get("labelGlosses") or {}).get(value)
    return f"{value} · {gloss}" if gloss else value


def explorer_url(found: Limits) -> str | None:
    chain = found.get("chain")
    return chain["explorerUrl"] if chain else None


def tx_markdown(tx_hash: str | None, explorer: str | None) -> str:
    """A transaction hash as a link to the chain's explorer, or as code where no explorer indexes the chain."""
    if not tx_hash:
        return "—"
    short = f"{tx_hash[:10]}…{tx_hash[-6:]}" if len(tx_hash) > 20 else tx_hash
    return f"[`{short}`]({explorer.rstrip('/')}/tx/{tx_hash})" if explorer else f"`{tx_hash}`"


def wallet_markdown(wallet: str | None, explorer: str | None) -> str:
    if not wallet:
        return "no payout wallet"
    return f"[`{wallet}`]({explorer.rstrip('/')}/address/{wallet})" if explorer else f"`{wallet}`"
