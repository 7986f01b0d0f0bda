"""Monthly statements as pandas frames: a caller's invoice lines, a creator's earnings per persona and day with
the period's settlements, and the platform's finance report cross-checked against the ledger; CSV/Parquet out.

Every amount is the usage row's own integer micro-units (priced once by PriceBook.charge); nothing here prices,
it only sums — so a statement's totals are the totals GET /usage shows for the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.ledger import PLATFORM_REVENUE, PROVIDER_COST
from bentos.store.models import LedgerEntry, LedgerTransaction, OutboxItem, Persona, Settlement, UsageEvent

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

INVOICE_COLUMNS = ["date", "request_id", "persona_id", "persona", "model", "chars", "unit_price", "amount"]
EARNINGS_COLUMNS = [
    "date",
    "persona_id",
    "persona",
    "calls",
    "chars",
    "gross",
    "creator_share",
    "provider_cost",
    "platform_share",
]
SETTLEMENT_COLUMNS = [
    "settlement_id",
    "created_at",
    "confirmed_at",
    "usage_count",
    "amount",
    "creator_amount",
    "status",
    "tx_hash",
]
_USAGE_COLUMNS = [
    "created_at",
    "request_id",
    "caller_id",
    "creator_id",
    "persona_id",
    "persona",
    "model",
    "chars",
    "unit_price",
    "amount",
    "provider_cost",
    "creator_share",
    "platform_share",
]


class PeriodError(ValueError):
    """A period that is not YYYY-MM."""


@dataclass(frozen=True)
class Period:
    """A calendar month in UTC: [start, end)."""

    name: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, name: str) -> Period:
        match = _PERIOD.fullmatch(name.strip())
        if match is None:
            raise PeriodError(f"period must be YYYY-MM, not {name!r}")
        year, month = int(match[1]), int(match[2])
        if not 1970 <= year <= 9998:
            raise PeriodError(f"period must be a month from 1970-01 on, not {name!r}")
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        return cls(f"{year:04d}-{month:02d}", start, end)


# --- reading usage rows --------------------------------------------------------------------------------------


def _usage_query(period: Period):  # type: ignore[no-untyped-def]  # (Select's variadic type)
    return (
        select(
            # As text: pandas parses a million timestamps at once, far faster than one datetime per row.
            cast(UsageEvent.created_at, String).label("created_at"),
            UsageEvent.request_id,
            UsageEvent.caller_id,
            UsageEvent.creator_id,
            UsageEvent.persona_id,
            Persona.name.label("persona"),
            UsageEvent.model,
            UsageEvent.chars,
            UsageEvent.unit_price,
            UsageEvent.amount,
            UsageEvent.provider_cost,
            UsageEvent.creator_share,
            UsageEvent.platform_share,
        )
        .join(Persona, Persona.id == UsageEvent.persona_id)
        .where(UsageEvent.created_at >= period.start, UsageEvent.created_at < period.end)
        .order_by(UsageEvent.id)
    )


def usage_frame(
    session: Session, period: Period, *, caller_id: str | None = None, creator_id: str | None = None
) -> pd.DataFrame:
    """The period's usage rows (of one caller and/or one creator when given), one row per metered call, in
    id order; money columns int64, `created_at` UTC."""
    query = _usage_query(period)
    if caller_id is not None:
        query = query.where(UsageEvent.caller_id == caller_id)
    if creator_id is not None:
        query = query.where(UsageEvent.creator_id == creator_id)
    rows = session.execute(query).all()
    return usage_rows_frame(rows)


def usage_rows_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """Rows in `_USAGE_COLUMNS` order → the usage frame (also what the notebook builds from simulated calls)."""
    frame = pd.DataFrame.from_records(list(rows), columns=_USAGE_COLUMNS)
    for column in ("chars", "unit_price", "amount", "provider_cost", "creator_share", "platform_share"):
        frame[column] = frame[column].astype("int64")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame


# --- the three statements ------------------------------------------------------------------------------------


def invoice_lines(usage: pd.DataFrame) -> pd.DataFrame:
    """What a caller paid: one line per call (date, request id, persona, model, chars, unit price, amount)."""
    lines = usage.assign(date=usage["created_at"].dt.strftime("%Y-%m-%d"))
    return lines[INVOICE_COLUMNS].reset_index(drop=True)


def creator_earnings(usage: pd.DataFrame) -> pd.DataFrame:
    """What a creator's personas earned, per persona and day: calls, chars, gross, and its split."""
    if usage.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in EARNINGS_COLUMNS}).astype(
            {"date": "object", "persona_id": "object", "persona": "object"}
        )
    # Group on the day itself and format the (few) groups, not a million timestamps.
    days = usage.assign(date=usage["created_at"].dt.floor("D"))
    grouped = days.groupby(["date", "persona_id", "persona"], sort=True).agg(
        calls=("request_id", "size"),
        chars=("chars", "sum"),
        gross=("amount", "sum"),
        creator_share=("creator_share", "sum"),
        provider_cost=("provider_cost", "sum"),
        platform_share=("platform_share", "sum"),
    )
    earnings = grouped.reset_index()
    earnings["date"] = earnings["date"].dt.strftime("%Y-%m-%d")
    return earnings[EARNINGS_COLUMNS].astype({c: "int64" for c in EARNINGS_COLUMNS[3:]})


def settlements_frame(session: Session, creator_id: str, period: Period) -> pd.DataFrame:
    """The creator's settlements created in the period, with the payout's tx hash (the settlement's own, else
    its deposit's in the chain outbox: one intent per settlement, or per cycle chunk of many creators)."""
    rows = session.execute(
        select(Settlement, OutboxItem.tx_hash)
        .outerjoin(
            OutboxItem,
            OutboxItem.intent_key
            == literal("settle:") + func.coalesce(Settlement.chain_settlement_id, Settlement.id),
        )
        .where(
            Settlement.creator_id == creator_id,
            Settlement.created_at >= period.start,
            Settlement.created_at < period.end,
        )
        .order_by(Settlement.created_at)
    ).all()
    records = [
        (
            s.id,
            s.created_at,
            s.confirmed_at,
            s.usage_count,
            s.amount,
            s.creator_amount,
            s.status,
            s.tx_hash or deposit_hash,
        )
        for s, deposit_hash in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=SETTLEMENT_COLUMNS)
    for column in ("created_at", "confirmed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@dataclass(frozen=True)
class Totals:
    calls: int
    chars: int
    amount: int
    provider_cost: int
    creator_share: int
    platform_share: int

    @classmethod
    def of(cls, usage: pd.DataFrame) -> Totals:
        def total(column: str) -> int:
            return int(usage[column].sum()) if not usage.empty else 0

        return cls(
            len(usage),
            total("chars"),
            total("amount"),
            total("provider_cost"),
            total("creator_share"),
            total("platform_share"),
        )


@dataclass(frozen=True)
class Statement:
    """One account's month: what it paid (`invoice`), and for a creator what its personas earned."""

    period: Period
    account_id: str
    invoice: pd.DataFrame  # INVOICE_COLUMNS
    paid: Totals
    earnings: pd.DataFrame | None  # EARNINGS_COLUMNS; None for an account that is not a creator
    earned: Totals | None
    settlements: pd.DataFrame | None  # SETTLEMENT_COLUMNS


def statement(
    sessions: sessionmaker[Session], account_id: str, period: Period, *, creator: bool
) -> Statement:
    with sessions() as session:
        paid = usage_frame(session, period, caller_id=account_id)
        earned = usage_frame(session, period, creator_id=account_id) if creator else None
        settled = settlements_frame(session, account_id, period) if creator else None
    return Statement(
        period,
        account_id,
        invoice_lines(paid),
        Totals.of(paid),
        creator_earnings(earned) if earned is not None else None,
        Totals.of(earned) if earned is not None else None,
        settled,
    )


# --- the platform's month ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFigures:
    """The period's movements of platform:revenue and provider:cost, split by transaction kind."""

    revenue: int  # Σ platform:revenue (margin after provider cost), every kind
    provider_cost: int  # Σ provider:cost, every kind
    speech_revenue: int
    speech_provider_cost: int
    clone_revenue: int
    clone_provider_cost: int


@dataclass(frozen=True)
class FinanceReport:
    period: Period
    currency: str
    usage: Totals  # from the usage rows: amount is gross revenue
    margin: int  # Σ platform_share − Σ provider_cost, from the usage rows
    ledger: LedgerFigures
    matches: bool  # the usage rows' margin and provider cost equal the ledger's speech movements


def ledger_figures(session: Session, period: Period) -> LedgerFigures:
    rows = session.execute(
        select(LedgerTransaction.kind, LedgerEntry.book, func.sum(LedgerEntry.amount))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerEntry.book.in_([PLATFORM_REVENUE, PROVIDER_COST]),
            LedgerTransaction.created_at >= period.start,
            LedgerTransaction.created_at < period.end,
        )
        .group_by(LedgerTransaction.kind, LedgerEntry.book)
    ).all()
    sums = {(kind, book): int(total or 0) for kind, book, total in rows}

    def of(book: str, kind: str | None = None) -> int:
        return sum(v for (k, b), v in sums.items() if b == book and (kind is None or k == kind))

    return LedgerFigures(
        of(PLATFORM_REVENUE),
        of(PROVIDER_COST),
        of(PLATFORM_REVENUE, "speech"),
        of(PROVIDER_COST, "speech"),
        of(PLATFORM_REVENUE, "clone"),
        of(PROVIDER_COST, "clone"),
    )


def finance_report(sessions: sessionmaker[Session], period: Period, currency: str) -> FinanceReport:
    """Revenue, provider cost, creator share and margin from the period's usage rows, and the same month as
    the ledger's platform:revenue / provider:cost books saw it (clone fees appear only there)."""
    with sessions() as session:
        totals = session.execute(
            select(
                func.count(UsageEvent.id),
                func.coalesce(func.sum(UsageEvent.chars), 0),
                func.coalesce(func.sum(UsageEvent.amount), 0),
                func.coalesce(func.sum(UsageEvent.provider_cost), 0),
                func.coalesce(func.sum(UsageEvent.creator_share), 0),
                func.coalesce(func.sum(UsageEvent.platform_share), 0),
            ).where(UsageEvent.created_at >= period.start, UsageEvent.created_at < period.end)
        ).one()
        figures = ledger_figures(session, period)
    usage = Totals(*(int(v) for v in totals))
    margin = usage.platform_share - usage.provider_cost
    matches = figures.speech_revenue == margin and figures.speech_provider_cost == usage.provider_cost
    return FinanceReport(period, currency, usage, margin, figures, matches)


# --- files -----------------------------------------------------------------------------------------------------


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text: amounts as integers (micro-units), times in ISO 8601 UTC."""
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z")


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.write_text(to_csv(frame), encoding="utf-8")
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path, index=False, engine="pyarrow")
    return path


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"date": str, "request_id": str, "persona_id": str, "tx_hash": str})


def read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path, engine="pyarrow")
