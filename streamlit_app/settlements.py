"""A settlement as a creator reads it, one way on every page: what was paid to them (not what callers paid), to
which wallet, in which transaction (a link where the chain has an explorer), when, in the viewer's time zone."""

from __future__ import annotations

import streamlit as st

from streamlit_app import contract
from streamlit_app.api_client import Settlement
from streamlit_app.dates import local_time
from streamlit_app.money import exactly, format_cny

BADGES = {"pending": "blue", "sent": "orange", "confirmed": "green", "failed": "red"}


def paid_to_creator(settlement: Settlement) -> int:
    """The creator's part: what reaches their wallet (`amount` is what callers paid, before the platform's)."""
    return int(settlement.get("creatorAmount", settlement["amount"]))


def headline(settlement: Settlement, explorer: str | None) -> str:
    """`**¥0.07** to `0xab…` :green-badge[confirmed] · tx <link>` (markdown)."""
    colour = BADGES.get(settlement["status"], "gray")
    wallet = contract.wallet_markdown(settlement.get("payoutWallet"), explorer)
    tx = contract.tx_markdown(settlement.get("txHash"), explorer)
    return (
        f"**{format_cny(paid_to_creator(settlement))}** to {wallet} "
        f":{colour}-badge[{settlement['status']}] · tx {tx}"
    )


def details(settlement: Settlement) -> str:
    """The small print: when, how many calls, what callers paid in all, the on-chain amount."""
    parts = [local_time(settlement.get("createdAt"))]
    if settlement.get("usageCount") is not None:
        parts.append(f"{settlement.get('usageCount', 0):,} calls")
    if "creatorAmount" in settlement:
        parts.append(f"callers paid {format_cny(settlement['amount'])} in all")
    if settlement.get("weiAmount"):
        parts.append(f"{int(settlement.get('weiAmount') or 0):,} wei on chain")
    return " · ".join(parts) + f" · `{settlement['settlementId']}`"


def show_settlement(settlement: Settlement, explorer: str | None) -> None:
    with st.container(border=True):
        st.markdown(
            headline(settlement, explorer), help=exactly(paid_to_creator(settlement), settlement["amount"])
        )
        st.caption(details(settlement))
