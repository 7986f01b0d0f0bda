"""The one price function: characters × price per 10k chars → integer micro-CNY, split creator/platform."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Charge:
    """An amount and its split; creator_share + platform_share == amount always."""

    unit_price: int  # micro-CNY per 10,000 chars
    amount: int
    creator_share: int
    platform_share: int


@dataclass(frozen=True)
class PriceBook:
    """configs/billing/default.yaml. All money is integer micro-CNY (1 CNY = 1,000,000)."""

    currency: str = "CNY"
    list_price_per_10k: dict[str, int] = field(default_factory=dict)
    provider_cost_per_10k: dict[str, int] = field(default_factory=dict)
    clone_cost: int = 0
    creator_share_bps: int = 7000
    settlement_period_days: int = 7
    minimum_payout: int = 1
    wei_per_micro: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.creator_share_bps <= 10_000:
            raise ValueError("creator_share_bps must be within 0..10000")
        for table in (self.list_price_per_10k, self.provider_cost_per_10k):
            if any(not isinstance(v, int) or v < 0 for v in table.values()):
                raise ValueError("prices must be non-negative integers (micro-CNY)")

    def list_price(self, model: str) -> int:
        try:
            return self.list_price_per_10k[model]
        except KeyError:
            raise ValueError(f"no price for model {model!r}") from None

    def charge(self, chars: int, unit_price: int) -> Charge:
        """Price `chars` at `unit_price` per 10k chars, rounding up to a whole micro-CNY (no free calls)."""
        if chars < 0 or unit_price < 0:
            raise ValueError("chars and price must be non-negative")
        amount = -(-chars * unit_price // 10_000)
        creator = amount * self.creator_share_bps // 10_000
        return Charge(unit_price, amount, creator, amount - creator)

    def to_wei(self, micro: int) -> int:
        return micro * self.wei_per_micro
