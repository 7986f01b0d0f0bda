"""Account & billing: sign up (key shown once) or paste a key; usage, creator earnings, settlement."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pandas as pd
import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import Account, ApiError, PlatformClient, Settlement, Usage
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error

WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
SETTLEMENT_FINAL = frozenset({"confirmed", "failed"})
SETTLEMENT_BADGES = {"pending": "blue", "sent": "orange", "confirmed": "green", "failed": "red"}
_SIGN_UP_KEY = "vp_sign_up_idempotency_key"
_FOLLOWING = "vp_following_settlement"


def sign_up_form() -> None:
    with st.form("sign-up"):
        name = st.text_input("Name")
        email = st.text_input("Email")
        role = st.radio(
            "I want to",
            ["creator", "consumer"],
            format_func={"creator": "publish my voice (creator)", "consumer": "use voices (consumer)"}.get,
            horizontal=True,
        )
        wallet = st.text_input("Payout wallet (optional, creators)", placeholder="0x…")
        submitted = st.form_submit_button("Sign up", type="primary")
    if not submitted:
        return
    problems = []
    if not name.strip():
        problems.append("Enter your name.")
    if "@" not in email:
        problems.append("Enter a valid email address.")
    if wallet.strip() and not WALLET.match(wallet.strip()):
        problems.append("A payout wallet is 0x followed by 40 hex digits.")
    if problems:
        st.error("  \n".join(problems), icon=":material/error:")
        return
    # One key per attempt: a double click returns the same account instead of creating two.
    idempotency_key = st.session_state.setdefault(_SIGN_UP_KEY, str(uuid.uuid4()))
    with session.client() as api:
        try:
            signed_up = api.sign_up(
                name.strip(),
                email.strip(),
                role,  # type: ignore[arg-type]
                wallet.strip() or None,
                idempotency_key=idempotency_key,
            )
        except ApiError as err:
            st.session_state.pop(_SIGN_UP_KEY, None)
            show_api_error(err, context="Sign-up failed")
            return
    st.session_state.pop(_SIGN_UP_KEY, None)
    if not signed_up["apiKey"]:  # a replayed sign-up: the key was in the first answer only
        st.error(
            "This sign-up was already completed; its API key was shown only once. "
            "Use the key you saved below.",
            icon=":material/error:",
        )
        return
    session.sign_in(signed_up["apiKey"], signed_up["account"], reveal=True)
    st.rerun()


def existing_key_form() -> None:
    with st.form("existing-key"):
        key = st.text_input("API key", type="password")
        submitted = st.form_submit_button("Use this key")
    if not submitted or not key.strip():
        return
    with PlatformClient.from_env(key.strip()) as api:
        try:
            me = api.me()
        except ApiError as err:
            show_api_error(err, context="That key was not accepted")
            return
    session.sign_in(key.strip(), me)
    st.rerun()


def show_account(me: Account) -> None:
    key = session.take_key_to_reveal()
    if key:
        st.success(f"Welcome, {me['name']} — your account is ready.", icon=":material/celebration:")
        st.warning(
            "This is your API key. Copy it now and keep it secret: it is shown only this once.",
            icon=":material/key:",
        )
        st.code(key, language=None)
    info_col, action_col = st.columns([4, 1])
    info_col.markdown(
        f"**{me['name']}** · {me['email']} · {me['role']}  \n"
        f"Account `{me['id']}`"
        + (f" · payout wallet `{me['payoutWallet']}`" if me.get("payoutWallet") else "")
    )
    if action_col.button("Sign out", icon=":material/logout:"):
        session.sign_out()
        st.rerun()


def show_usage(usage: Usage, personas: dict[str, str]) -> None:
    st.subheader("Usage")
    totals = usage["totals"]
    calls_col, chars_col, seconds_col, amount_col = st.columns(4)
    calls_col.metric("Calls", f"{totals['calls']:,}")
    chars_col.metric("Characters", f"{totals['chars']:,}")
    seconds_col.metric("Audio", f"{totals['audioSeconds']:,.1f} s")
    amount_col.metric("Spent", format_cny(totals["amount"]))
    if not usage["calls"]:
        st.caption("No calls yet — try **Generate**.")
        return
    table = pd.DataFrame(
        [
            {
                "when": call["createdAt"],
                "persona": personas.get(call["personaId"], call["personaId"]),
                "characters": call["chars"],
                "audio (s)": round(call["audioSeconds"], 2),
                "model": call["model"],
                "cost": format_cny(call["amount"]),
                "request": call["requestId"],
            }
            for call in usage["calls"]
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def show_earnings(usage: Usage) -> None:
    st.subheader("Earnings")
    earnings = usage["earnings"]
    if not earnings:
        st.caption("Nobody has called your personas yet.")
        return
    table = pd.DataFrame(
        [
            {
                "persona": e["name"],
                "calls": e["calls"],
                "characters": e["chars"],
                "billed": format_cny(e["amount"]),
                "your share": format_cny(e["creatorShare"]),
                "unsettled": format_cny(e["unsettled"]),
            }
            for e in earnings
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")


def settlement_line(settlement: Settlement) -> str:
    colour = SETTLEMENT_BADGES.get(settlement["status"], "gray")
    tx = f" · tx `{settlement['txHash']}`" if settlement.get("txHash") else ""
    return f"{format_cny(settlement['amount'])} :{colour}-badge[{settlement['status']}]{tx}"


@st.fragment(run_every=2.0)
def follow_settlement(settlement_id: str) -> None:
    with session.client() as api:
        try:
            settlement = api.get_settlement(settlement_id)
        except ApiError as err:
            show_api_error(err, context="Settlement status unavailable")
            return
    if settlement["status"] in SETTLEMENT_FINAL:
        st.session_state[_FOLLOWING] = None
        st.rerun()
    st.info(f"Settlement in progress: {settlement_line(settlement)}", icon=":material/hourglass_top:")


def show_settlements(api: PlatformClient, usage: Usage) -> None:
    st.subheader("Settlements")
    unsettled = sum(e["unsettled"] for e in usage["earnings"])
    st.markdown(f"Unsettled earnings: **{format_cny(unsettled)}**")
    if st.button("Settle now", type="primary", disabled=unsettled <= 0, icon=":material/payments:"):
        try:
            settlement = api.settle()
        except ApiError as err:
            show_api_error(err, context="Settlement refused")
        else:
            st.session_state[_FOLLOWING] = settlement["settlementId"]
    following = st.session_state.get(_FOLLOWING)
    if following:
        follow_settlement(following)
    try:
        history = api.list_settlements()
    except ApiError as err:
        show_api_error(err, context="Settlement history unavailable")
        return
    for settlement in history:
        st.markdown(f"- `{settlement['settlementId']}` · {settlement_line(settlement)}")
    if not history:
        st.caption("No settlements yet.")


st.title("Account & billing")
me = session.account()
if me is None:
    sign_up_tab, key_tab = st.tabs(["Sign up", "I have an API key"])
    with sign_up_tab:
        sign_up_form()
    with key_tab:
        existing_key_form()
    st.stop()

show_account(me)
st.divider()
with session.client() as api:
    try:
        usage = api.usage()
    except ApiError as err:
        show_api_error(err, context="Usage unavailable")
        st.stop()
    names: dict[str, Any] = {e["personaId"]: e["name"] for e in usage["earnings"]}
    show_usage(usage, names)
    if me["role"] == "creator" or usage["earnings"]:
        st.divider()
        show_earnings(usage)
        show_settlements(api, usage)
