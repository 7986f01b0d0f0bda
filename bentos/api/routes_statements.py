"""Monthly statements (a caller's invoice, a creator's earnings and settlements) and the admin finance report."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.views import error_responses
from bentos.api.views_statements import (
    CreatorStatementView,
    EarningsDayView,
    EarningsTotalsView,
    FinanceLedgerView,
    FinanceUsageView,
    FinanceView,
    InvoiceLineView,
    InvoiceTotalsView,
    InvoiceView,
    StatementSettlementView,
    StatementView,
)
from bentos.billing import statements
from bentos.core.accounts import Role
from bentos.core.errors import ErrorCode, PlatformError, forbidden

router = APIRouter(tags=["billing"])
UNIT = "micro"
# YYYY-MM from 1970-01 to 9998-12: what the server can bound as a month (the schema says exactly that).
PERIOD = Query(
    pattern=r"^(19[7-9]\d|[2-8]\d{3}|9[0-8]\d\d|99[0-8]\d|999[0-8])-(0[1-9]|1[0-2])$",
    description="YYYY-MM (UTC calendar month), 1970-01 to 9998-12",
    max_length=7,
)


class StatementFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class StatementPart(StrEnum):
    INVOICE = "invoice"
    EARNINGS = "earnings"
    SETTLEMENTS = "settlements"


def _period(name: str) -> statements.Period:
    try:
        return statements.Period.parse(name)
    except statements.PeriodError as err:
        raise PlatformError(ErrorCode.INVALID_REQUEST, str(err), 422) from None


def _plain(value: Any) -> Any:
    """numpy/pandas scalars → JSON-ready Python values (NaT/NaN → None)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the statement"}
}


@router.get(
    "/statements", response_model=StatementView, responses={**CSV_RESPONSE, **error_responses(401, 403, 422)}
)
def get_statement(
    platform: PlatformDep,
    account: CallerDep,
    period: Annotated[str, PERIOD],
    format: Annotated[StatementFormat, Query()] = StatementFormat.JSON,
    part: Annotated[
        StatementPart, Query(description="csv only: invoice (default), earnings or settlements (creators)")
    ] = StatementPart.INVOICE,
) -> Response | StatementView:
    """The caller's invoice lines for the month (each call they paid) and, for creators, what their personas
    earned per day and the month's settlements; totals equal GET /usage's for the same rows."""
    month = _period(period)
    creator = account.role in (Role.CREATOR, Role.ADMIN)
    found = statements.statement(platform.sessions, account.id, month, creator=creator)
    if format == StatementFormat.CSV:
        frames = {
            StatementPart.INVOICE: found.invoice,
            StatementPart.EARNINGS: found.earnings,
            StatementPart.SETTLEMENTS: found.settlements,
        }
        frame = frames[part]
        if frame is None:
            raise forbidden("only creators have earnings and settlements")
        name = f"voxpersona-{month.name}-{part.value}.csv"
        return Response(
            statements.to_csv(frame),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    earnings = None
    if found.earnings is not None and found.earned is not None and found.settlements is not None:
        earned = found.earned
        earnings = CreatorStatementView(
            days=[EarningsDayView.model_validate(r) for r in _records(found.earnings)],
            totals=EarningsTotalsView(
                calls=earned.calls,
                chars=earned.chars,
                gross=earned.amount,
                creator_share=earned.creator_share,
                provider_cost=earned.provider_cost,
                platform_share=earned.platform_share,
            ),
            settlements=[StatementSettlementView.model_validate(r) for r in _records(found.settlements)],
        )
    paid = found.paid
    return StatementView(
        period=month.name,
        currency=platform.prices.currency,
        unit=UNIT,
        account_id=account.id,
        invoice=InvoiceView(
            lines=[InvoiceLineView.model_validate(r) for r in _records(found.invoice)],
            totals=InvoiceTotalsView(calls=paid.calls, chars=paid.chars, amount=paid.amount),
        ),
        earnings=earnings,
    )


@router.get("/admin/finance", responses=error_responses(401, 403, 422))
def finance(platform: PlatformDep, account: CallerDep, period: Annotated[str, PERIOD]) -> FinanceView:
    """Admins: the month's revenue, provider cost, creator share and margin from the usage rows, and the
    ledger's platform:revenue and provider:cost books for the same month (`matches` cross-checks them)."""
    if account.role != Role.ADMIN:
        raise forbidden("only admins read the platform's finance report")
    report = statements.finance_report(platform.sessions, _period(period), platform.prices.currency)
    usage, ledger = report.usage, report.ledger
    return FinanceView(
        period=report.period.name,
        currency=report.currency,
        unit=UNIT,
        usage=FinanceUsageView(
            calls=usage.calls,
            chars=usage.chars,
            revenue=usage.amount,
            provider_cost=usage.provider_cost,
            creator_share=usage.creator_share,
            platform_share=usage.platform_share,
            margin=report.margin,
        ),
        ledger=FinanceLedgerView(
            platform_revenue=ledger.revenue,
            provider_cost=ledger.provider_cost,
            speech_platform_revenue=ledger.speech_revenue,
            speech_provider_cost=ledger.speech_provider_cost,
            clone_platform_revenue=ledger.clone_revenue,
            clone_provider_cost=ledger.clone_provider_cost,
        ),
        matches=report.matches,
    )
