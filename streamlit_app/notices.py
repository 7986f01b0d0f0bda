"""How platform errors reach the user: the platform's message in plain words, what to do next, and the stable code
in small print (for a bug report or the docs)."""

from __future__ import annotations

import re

import streamlit as st

from streamlit_app.api_client import ApiError
from streamlit_app.money import format_cny

NEXT_STEP: dict[str, str] = {
    # No numbers here: the limits are the platform's (its message states them, the Create page shows them).
    "file_too_large": "The file is over the upload limit — trim it to just the seconds of speech needed.",
    "unsupported_format": "Export the audio in one of the formats the Create page lists.",
    "corrupt_audio": "The file could not be decoded — export it again.",
    "audio_too_short": "Use a longer recording of your speech.",
    "audio_too_long": "Trim the recording.",
    "no_speech": "No speech was found — record in a quiet room and speak clearly.",
    "platform_unreachable": "Is the platform running? Start it with `make run`.",
    "platform_timeout": "The platform is busy — try again in a moment.",
}


_VALIDATION_NOISE = re.compile(r"(?:^|(?<=: ))(?:Value error|Assertion failed), ", re.IGNORECASE)


def plain(message: str) -> str:
    """The platform's message without the validator's prefixes ("Value error, …"), starting with a capital."""
    text = _VALIDATION_NOISE.sub("", message or "").strip()
    return text[:1].upper() + text[1:] if text else "Something went wrong."


def small_code(code: str) -> str:
    return f":small[:gray[error code `{code}`]]"


def show_api_error(err: ApiError, *, context: str | None = None) -> None:
    """One error box: `context` (what failed), the message in plain words, a next step when we know one, and
    the code in small print."""
    lead = f"{context}: " if context else ""
    lines = [f"{lead}{plain(err.message)}"]
    if err.code in NEXT_STEP:
        lines.append(NEXT_STEP[err.code])
    elif err.status in (401, 403) and err.code not in ("forbidden",):
        lines.append("Check your API key on **Account & billing**.")
    elif err.retryable:
        lines.append("This is temporary — try again.")
    lines.append(small_code(err.code))
    st.error("  \n".join(lines), icon=":material/error:")


WALLET_PAGE = "views/wallet.py"
TOP_UP_HINT = "Top up on **Wallet** (a crypto deposit) or ask an admin for credit, then try again."


def show_short_of_money(
    err: ApiError, cost: str, outcome: str, *, purpose: str = "", needed_otherwise: int | None = None
) -> None:
    """A 402 `insufficient_balance` in plain words: what it would cost (`cost`, e.g. "this call costs"), what is
    available, what did not happen (`outcome`) and where to top up."""
    needed = err.details.get("needed", needed_otherwise)
    available = err.details.get("available")
    have = f" and you have {format_cny(available)} available" if isinstance(available, int) else ""
    lead = (
        f"Not enough balance{purpose}: {cost} {format_cny(needed)}{have}."
        if isinstance(needed, int)
        else f"Not enough balance{purpose}."
    )
    st.error(f"{lead} {outcome} {TOP_UP_HINT}", icon=":material/error:")
    st.page_link(WALLET_PAGE, label="Top up on Wallet", icon=":material/account_balance_wallet:")
