"""Response models of the statements and finance routes (camelCase JSON, money in integer micro-units)."""

from __future__ import annotations

from pydantic import Field

from bentos.api.views import IsoTime, View


class InvoiceLineView(View):
    date: str = Field(description="YYYY-MM-DD (UTC) of the call")
    request_id: str
    persona_id: str
    persona: str
    model: str
    chars: int
    unit_price: int = Field(description="micro-units per 10,000 characters")
    amount: int = Field(description="what the caller paid, micro-units")


class InvoiceTotalsView(View):
    calls: int
    chars: int
    amount: int


class InvoiceView(View):
    lines: list[InvoiceLineView]
    totals: InvoiceTotalsView


class EarningsDayView(View):
    date: str
    persona_id: str
    persona: str
    calls: int
    chars: int
    gross: int = Field(description="what callers paid for this persona that day")
    creator_share: int
    provider_cost: int
    platform_share: int


class EarningsTotalsView(View):
    calls: int
    chars: int
    gross: int
    creator_share: int
    provider_cost: int
    platform_share: int


class StatementSettlementView(View):
    settlement_id: str
    created_at: IsoTime
    confirmed_at: IsoTime
    usage_count: int
    amount: int
    creator_amount: int = Field(description="what the creator is paid by this settlement")
    status: str
    tx_hash: str | None


class CreatorStatementView(View):
    days: list[EarningsDayView]
    totals: EarningsTotalsView
    settlements: list[StatementSettlementView]


class StatementView(View):
    period: str
    currency: str
    unit: str
    account_id: str
    invoice: InvoiceView
    earnings: CreatorStatementView | None = Field(description="creators only: what their personas earned")


class FinanceUsageView(View):
    calls: int
    chars: int
    revenue: int = Field(description="Σ amount callers paid")
    provider_cost: int
    creator_share: int
    platform_share: int
    margin: int = Field(description="platformShare − providerCost")


class FinanceLedgerView(View):
    platform_revenue: int = Field(
        description="Σ platform:revenue in the period (margin, speech + clone fees)"
    )
    provider_cost: int = Field(description="Σ provider:cost in the period (speech + clones)")
    speech_platform_revenue: int
    speech_provider_cost: int
    clone_platform_revenue: int
    clone_provider_cost: int


class FinanceView(View):
    period: str
    currency: str
    unit: str
    usage: FinanceUsageView
    ledger: FinanceLedgerView
    matches: bool = Field(
        description="the usage rows' margin and provider cost equal the ledger's speech lines"
    )
