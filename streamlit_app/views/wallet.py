"""Wallet: balance and crypto top-up, the payout wallet changed with a signature, the claimable on-chain
balance and withdraw. On the local dev chain a demo wallet (a funded dev account) signs and sends for you."""

from __future__ import annotations

from typing import Any

import streamlit as st

from streamlit_app import session
from streamlit_app.api_client import ApiError
from streamlit_app.dates import local_time
from streamlit_app.demo_wallet import DemoWallet, DemoWalletError
from streamlit_app.money import cny_to_micro, exactly, format_cny
from streamlit_app.notices import show_api_error

_CHALLENGE = "vp_wallet_challenge"


def _demo(info: dict[str, Any]) -> DemoWallet | None:
    """The demo wallet, only when the platform says this is a dev chain it can be reached on."""
    if not info.get("devChain") or not info.get("rpcUrl"):
        return None
    return DemoWallet(str(info["rpcUrl"]), int(info["chainId"]))


def _balance_and_topup() -> dict[str, Any] | None:
    st.subheader("Balance and top-up")
    with session.client() as api:
        try:
            balance = api.balance()
            info = api.crypto_topup()
        except ApiError as err:
            show_api_error(err, context="Could not load the balance")
            return None
    left, right = st.columns(2)
    left.metric("Available", format_cny(int(balance["available"])), help=exactly(int(balance["available"])))
    right.metric(
        "Reserved for calls in flight",
        format_cny(int(balance["reserved"])),
        help=exactly(int(balance["reserved"])),
    )
    st.markdown(
        f"Send value to **`{info['function']}`** on contract `{info['contract']}` (chain {info['chainId']}) "
        f"with your reference `{info['reference']}`. It is credited after {info['confirmations']} "
        f"confirmation(s), at {info['weiPerMicro']:,} wei per micro-{info['currency']}."
    )
    demo = _demo(info)
    if demo is not None:
        amount = st.number_input("Top up (CNY)", min_value=0.01, value=1.0, step=1.0)
        if st.button("Top up with demo wallet", icon=":material/account_balance_wallet:"):
            wei = cny_to_micro(amount) * int(info["weiPerMicro"])
            try:
                tx = demo.deposit(str(info["contract"]), str(info["reference"]), wei)
            except (DemoWalletError, OSError, ValueError) as exc:
                st.error(f"The demo wallet could not deposit: {exc}", icon=":material/error:")
            else:
                st.success(f"Deposited in {tx}; your balance updates after the confirmations.")
    elif info.get("devChain"):
        st.caption("The embedded test chain has no RPC URL: the demo wallet needs `chain=anvil` (make run).")
    with session.client() as api:
        try:
            deposits = api.crypto_topups()
        except ApiError:
            deposits = []
    if deposits:
        st.dataframe(
            [
                {
                    "tx": d["txHash"],
                    "credited": format_cny(int(d["amount"])),
                    "at": local_time(d["createdAt"]),
                }
                for d in deposits
            ],
            hide_index=True,
        )
    return info


def _payout_wallet(info: dict[str, Any] | None) -> None:
    st.subheader("Payout wallet")
    me = session.account()
    st.write(f"Current: `{me.get('payoutWallet') if me else None}`")
    if st.button("Change it: get a message to sign"):
        with session.client() as api:
            try:
                st.session_state[_CHALLENGE] = api.wallet_challenge()
            except ApiError as err:
                show_api_error(err, context="Could not get a challenge")
    challenge = st.session_state.get(_CHALLENGE)
    if not challenge:
        return
    st.code(challenge["message"], language=None)
    st.caption(f"Sign it with the new wallet (personal_sign) before {local_time(challenge['expiresAt'])}.")
    demo = _demo(info or {})
    wallet = st.text_input("New payout wallet", value=demo.address if demo else "")
    signature = st.text_input("Signature (0x…)")
    use_demo = demo is not None and st.button("Sign with the demo wallet and change")
    if use_demo and demo is not None:
        wallet, signature = demo.address, demo.sign(challenge["message"])
    if use_demo or st.button("Change with this signature"):
        with session.client() as api:
            try:
                changed = api.change_payout_wallet(wallet.strip(), signature.strip())
            except ApiError as err:
                show_api_error(err, context="The wallet was not changed")
                return
        st.session_state.pop(_CHALLENGE, None)
        key = session.api_key()
        if key:
            session.sign_in(key, changed)  # the account shown everywhere now carries the new wallet
        st.success(f"Payouts now go to {changed['payoutWallet']}.")


def _claimable(info: dict[str, Any] | None) -> None:
    st.subheader("Paid out on chain")
    with session.client() as api:
        try:
            payouts = api.payouts()
        except ApiError as err:
            show_api_error(err, context="Could not read the chain")
            return
    st.metric(
        "Claimable by your payout wallet",
        format_cny(int(payouts["claimable"])),
        help=exactly(int(payouts["claimable"])),
    )
    st.caption(
        f"Your payout wallet calls `{payouts['withdrawFunction']}` on `{payouts['contract']}` to receive it "
        f"({payouts['claimableWei']} wei)."
    )
    demo = _demo(info or {})
    if demo is None or not payouts["payoutWallet"]:
        return
    if payouts["payoutWallet"].lower() != demo.address.lower():
        st.caption("The demo wallet can withdraw only when it is your payout wallet.")
        return
    if st.button("Withdraw with the demo wallet", disabled=int(payouts["claimableWei"]) == 0):
        try:
            tx = demo.withdraw(str(payouts["contract"]))
        except (DemoWalletError, OSError, ValueError) as exc:
            st.error(f"The withdrawal failed: {exc}", icon=":material/error:")
        else:
            st.success(f"Withdrawn in {tx}.")


session.require_account()
st.title("Wallet")
topup = _balance_and_topup()
_payout_wallet(topup)
_claimable(topup)
