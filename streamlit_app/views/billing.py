"""Billing: the balance (available and reserved), spend and earnings per day, the month's statement to download
and the settlement history: what reached the creator's wallet, the wallet, the tx (linked to the chain's explorer
when it has one). Headline amounts are to the cent with the exact value on hover; statement tables are exact.

Every amount is the platform's (`GET /balance`, `GET /statements`, `GET /settlements`); the page only groups
them by day for the charts and formats them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Statement
from streamlit_app.dates import local_time
from streamlit_app.money import MICRO_PER_CNY, exact_cny, exactly, format_cny
from streamlit_app.notices import show_api_error
from streamlit_app.settlements import show_settlement

MONTHS_OFFERED = 6
TOP_UP_HINT = "To add money, make a crypto deposit on **Wallet** or ask an admin for a credit grant."


def recent_months(now: datetime | None = None, count: int = MONTHS_OFFERED) -> list[str]:
    """This month and the ones before it, newest first, as YYYY-MM."""
    now = now or datetime.now(UTC)
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def per_day(rows: list[dict[str, object]], column: str, label: str) -> pd.DataFrame:
    """Σ `column` per date, in CNY, for a chart (the amounts themselves are the platform's)."""
    frame = pd.DataFrame(rows, columns=["date", column])
    if frame.empty:
        return pd.DataFrame({label: []})
    daily = frame.groupby("date")[column].sum() / MICRO_PER_CNY
    return daily.rename(label).to_frame()


def show_balance(is_creator: bool) -> None:
    with session.client() as api:
        try:
            funds = api.balance()
        except ApiError as err:
            show_api_error(err, context="Could not read the balance")
            return
    columns = st.columns(3 if is_creator else 2)
    columns[0].metric("Available", format_cny(funds["available"]), help=exactly(funds["available"]))
    columns[1].metric(
        "Reserved",
        format_cny(funds["reserved"]),
        help="held for calls in flight"
        + (f" — {exactly(funds['reserved'])}" if exactly(funds["reserved"]) else ""),
    )
    if is_creator:
        earnings = funds.get("earnings", 0)
        columns[2].metric(
            "Unpaid earnings",
            format_cny(earnings),
            help="your share of calls not yet paid out"
            + (f" — {exactly(earnings)}" if exactly(earnings) else ""),
        )
    st.caption(TOP_UP_HINT)
    st.page_link("views/wallet.py", label="Top up on Wallet", icon=":material/account_balance_wallet:")


def download(label: str, period: str, part: str) -> None:
    with session.client() as api:
        try:
            found = api.statement_csv(period, part)
        except ApiError as err:
            show_api_error(err, context=f"No {part} download")
            return
    st.download_button(
        label, found.content, file_name=found.filename, mime="text/csv", icon=":material/download:"
    )


def show_spend(statement: Statement) -> None:
    st.subheader("Spend")
    invoice = statement["invoice"]
    totals = invoice["totals"]
    calls_col, chars_col, spent_col = st.columns(3)
    calls_col.metric("Calls", f"{totals['calls']:,}")
    chars_col.metric("Characters", f"{totals['chars']:,}")
    spent_col.metric("Spent", format_cny(totals["amount"]), help=exactly(totals["amount"]))
    if not invoice["lines"]:
        st.caption("No calls paid this month.")
        return
    st.bar_chart(per_day(list(invoice["lines"]), "amount", "spend (CNY)"))  # type: ignore[arg-type]
    lines = pd.DataFrame(invoice["lines"])
    for column in ("amount", "unitPrice"):  # exact: a statement line is where every micro-yuan is shown
        lines[column] = lines[column].map(exact_cny)
    if "createdAt" in lines:
        lines["createdAt"] = lines["createdAt"].map(local_time)
    st.dataframe(lines, hide_index=True, width="stretch")
    download("Download invoice (CSV)", statement["period"], "invoice")


def show_earnings(statement: Statement) -> None:
    earnings = statement["earnings"]
    if earnings is None:
        return
    st.subheader("Earnings")
    totals = earnings["totals"]
    gross_col, share_col, calls_col = st.columns(3)
    gross, share = totals.get("gross", 0), totals.get("creatorShare", 0)
    gross_col.metric("Callers paid", format_cny(gross), help=exactly(gross))
    share_col.metric("Your share", format_cny(share), help=exactly(share))
    calls_col.metric("Calls of your personas", f"{totals.get('calls', 0):,}")
    if earnings["days"]:
        st.line_chart(per_day(list(earnings["days"]), "creatorShare", "earnings (CNY)"))  # type: ignore[arg-type]
        days = pd.DataFrame(earnings["days"])
        for column in ("gross", "creatorShare", "providerCost", "platformShare"):
            days[column] = days[column].map(exact_cny)
        st.dataframe(days, hide_index=True, width="stretch")
        download("Download earnings (CSV)", statement["period"], "earnings")
    else:
        st.caption("Your personas were not called this month.")


def show_settlements() -> None:
    st.subheader("Settlements")
    with session.client() as api:
        try:
            settlements = api.list_settlements()
        except ApiError as err:
            show_api_error(err, context="Could not read settlements")
            return
    if not settlements:
        st.caption("No settlements yet: earnings are paid out on chain every settlement period.")
        return
    explorer = contract.explorer_url(contract.limits())
    for settlement in settlements:
        show_settlement(settlement, explorer)


st.title("Billing")
me = session.require_account()
is_creator = me["role"] in ("creator", "admin")
show_balance(is_creator)
period = st.selectbox("Month", recent_months())
with session.client() as api:
    try:
        month = api.statement(period)
    except ApiError as err:
        show_api_error(err, context="Could not load the statement")
        st.stop()
show_spend(month)
show_earnings(month)
if is_creator:
    show_settlements()
