"""Account & billing: sign in (email + password, or an API key), sign up, reset a forgotten password, try the
demo creator; then the account, its API keys (create with a name and scope, list, revoke), usage, earnings and
settlement."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pandas as pd
import streamlit as st

from streamlit_app import contract, session, settlements
from streamlit_app.api_client import Account, ApiError, ApiKeyInfo, PlatformClient, Settlement, Usage
from streamlit_app.dates import local_time
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error

WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
PASSWORD_MIN_CHARS = 8  # the platform's rule (it refuses shorter with `invalid_password`); said here up front
SETTLEMENT_FINAL = frozenset({"confirmed", "failed"})
SCOPES = {
    "full": "full — everything this account can do",
    "speech": "speech — read, and speak or chat with personas (billed)",
    "read": "read — look only, change nothing",
}
WALLET_PAGE = "views/wallet.py"
_SIGN_UP_KEY = "vp_sign_up_idempotency_key"
_FOLLOWING = "vp_following_settlement"
_RESET_SENT = "vp_reset_sent_to"
MODES = ("Sign in", "Create an account", "Forgot password?")


def sign_in_form() -> None:
    with st.form("sign-in"):
        email = st.text_input("Email", autocomplete="email")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        st.caption("…or sign in with an API key instead:")
        key = st.text_input("API key", type="password", placeholder="vpk_…")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    if key.strip():
        with PlatformClient.from_env(key.strip()) as api:
            try:
                signed_in = api.sign_in_with_key()
            except ApiError as err:
                show_api_error(err, context="That key was not accepted")
                return
    elif email.strip() and password:
        with session.client() as api:
            try:
                signed_in = api.sign_in(email.strip(), password)
            except ApiError as err:
                show_api_error(err, context="Sign-in failed")
                return
    else:
        st.error("Enter your email and password, or an API key.", icon=":material/error:")
        return
    session.start(signed_in)
    st.rerun()


def sign_up_form() -> None:
    with st.form("sign-up"):
        name = st.text_input("Name")
        email = st.text_input("Email", autocomplete="email")
        password = st.text_input(
            "Password",
            type="password",
            autocomplete="new-password",
            help=f"at least {PASSWORD_MIN_CHARS} characters",
        )
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
    if len(password) < PASSWORD_MIN_CHARS:
        problems.append(f"Choose a password of at least {PASSWORD_MIN_CHARS} characters.")
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
                password=password,
            )
            signed_in = api.sign_in(email.strip(), password)
        except ApiError as err:
            st.session_state.pop(_SIGN_UP_KEY, None)
            show_api_error(err, context="Sign-up failed")
            return
    st.session_state.pop(_SIGN_UP_KEY, None)
    session.start(signed_in, reveal_key=signed_up["apiKey"])
    st.rerun()


def forgot_password_forms() -> None:
    st.caption("We send a one-time reset token to your email; it works once, for an hour.")
    with st.form("reset-request"):
        email = st.text_input("Email", autocomplete="email")
        asked = st.form_submit_button("Send reset token")
    if asked and "@" in email:
        with session.client() as api:
            try:
                api.request_password_reset(email.strip())
            except ApiError as err:
                show_api_error(err, context="Could not ask for a reset")
                return
        st.session_state[_RESET_SENT] = email.strip()
    elif asked:
        st.error("Enter the email address of your account.", icon=":material/error:")
    sent_to = st.session_state.get(_RESET_SENT)
    if sent_to:
        st.info(f"If an account uses {sent_to}, a reset token is on its way to it.", icon=":material/mail:")
    with st.form("reset-password"):
        token = st.text_input("Reset token", placeholder="vpr_…")
        password = st.text_input("New password", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Set new password", type="primary")
    if not submitted:
        return
    if not token.strip() or len(password) < PASSWORD_MIN_CHARS:
        st.error(
            f"Paste the token from the mail and choose a password of at least {PASSWORD_MIN_CHARS} characters.",
            icon=":material/error:",
        )
        return
    with session.client() as api:
        try:
            account = api.reset_password(token.strip(), password)
        except ApiError as err:
            show_api_error(err, context="The password was not changed")
            return
        st.session_state[_RESET_SENT] = None
        try:
            signed_in = api.sign_in(account["email"], password)
        except ApiError as err:
            show_api_error(err, context="The password was changed, but signing in failed — sign in again")
            return
    session.start(signed_in)
    st.rerun()


def demo_button() -> None:
    demo = session.demo_credentials()
    if demo is None:
        return
    if st.button("Try the demo creator", icon=":material/play_circle:"):
        with session.client() as api:
            try:
                signed_in = api.sign_in(*demo)
            except ApiError as err:
                show_api_error(err, context="The demo account is not available")
                return
        session.start(signed_in)
        st.rerun()
    st.caption("A shared account that `make run` made, for a look around — sign out when you are done.")


def signed_out_page() -> None:
    ended = session.take_ended_reason()
    if ended:
        st.warning(ended, icon=":material/logout:")
    mode = st.radio("What would you like to do?", MODES, horizontal=True, label_visibility="collapsed")
    if mode == MODES[0]:
        sign_in_form()
    elif mode == MODES[1]:
        sign_up_form()
    else:
        forgot_password_forms()
    st.divider()
    demo_button()


def show_account(me: Account) -> None:
    key = session.key_to_reveal()
    if key:
        st.success(f"Welcome, {me['name']} — your account is ready.", icon=":material/celebration:")
        st.warning(
            "This is your API key, for programs that call the platform. Copy it now and keep it secret: it is "
            "shown only this once. (You sign in here with your email and password.)",
            icon=":material/key:",
        )
        st.code(key, language=None)
        if st.button("I have copied it", icon=":material/check:"):
            session.key_revealed()
            st.rerun()
    info_col, action_col = st.columns([4, 1])
    info_col.markdown(
        f"**{me['name']}** · {me['email']} · {me['role']}  \n"
        f"Account `{me['id']}`"
        + (f" · payout wallet `{me['payoutWallet']}`" if me.get("payoutWallet") else "")
    )
    if action_col.button("Sign out", icon=":material/logout:"):
        session.sign_out()
        st.rerun()
    if me["role"] == "creator" and not me.get("payoutWallet"):
        st.info("Set a payout wallet to settle your earnings.", icon=":material/account_balance_wallet:")
        st.page_link(WALLET_PAGE, label="Set the payout wallet on Wallet", icon=":material/arrow_forward:")


def key_row(api: PlatformClient, key: ApiKeyInfo) -> None:
    with st.container(border=True, key=f"vp-key-{key['id']}"):
        text_col, button_col = st.columns([5, 1], vertical_alignment="center")
        status = (
            f":red-badge[revoked {local_time(key['revokedAt'])}]"
            if key["revokedAt"]
            else ":green-badge[active]"
        )
        text_col.markdown(
            f"**{key['name'] or 'unnamed key'}** · `{key['prefix']}…` · scope **{key['scope']}** · "
            f"created {local_time(key['createdAt'])} {status}"
        )
        if key["revokedAt"]:
            return
        if button_col.button("Revoke", key=f"revoke-{key['id']}", icon=":material/block:"):
            try:
                api.revoke_key(key["id"])
            except ApiError as err:
                show_api_error(err, context="The key was not revoked")
                return
            st.rerun()


def show_keys(api: PlatformClient) -> None:
    st.subheader("API keys")
    st.caption(
        "For programs that call the platform. A key is shown once, when it is made; revoke one you lost."
    )
    terms = contract.limits().get("keys") or {"scopes": list(SCOPES), "nameMaxChars": 60}
    with st.form("new-key", clear_on_submit=True):
        name_col, scope_col = st.columns([3, 2])
        name = name_col.text_input(
            "Key name", placeholder="e.g. my podcast script", max_chars=terms["nameMaxChars"]
        )
        scope = scope_col.selectbox("Scope", terms["scopes"], format_func=lambda s: SCOPES.get(s, s))
        create = st.form_submit_button("Create key", icon=":material/key:")
    if create:
        try:
            issued = api.create_key(name.strip(), scope or "full")
        except ApiError as err:
            show_api_error(err, context="The key was not created")
        else:
            st.warning(
                f"Your new key **{issued['key']['name'] or 'unnamed key'}** — copy it now: it is shown only this once.",
                icon=":material/key:",
            )
            st.code(issued["apiKey"], language=None)
    try:
        keys = api.list_keys()
    except ApiError as err:
        show_api_error(err, context="The keys could not be listed")
        return
    for key in keys:
        key_row(api, key)


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
                "when": local_time(call["createdAt"]),
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
    """What the creator is paid (not the gross), to which wallet, in which tx — as on the Billing page."""
    return settlements.headline(settlement, contract.explorer_url(contract.limits()))


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
    explorer = contract.explorer_url(contract.limits())
    for settlement in history:
        settlements.show_settlement(settlement, explorer)
    if not history:
        st.caption("No settlements yet.")


st.title("Account & billing")
me = session.account()
if me is None:
    signed_out_page()
    st.stop()

show_account(me)
st.divider()
with session.client() as api:
    show_keys(api)
    st.divider()
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
