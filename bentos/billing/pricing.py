"""The one price function. All money is integer micro-CNY (1 CNY = 1,000,000); every division rounds once, here.

The rule (property-tested in tests/billing): for every call,

    amount        = max(ceil(chars × unit_price / 10k), provider_cost + floor)
    unit_price    = ceil(list_price[model] × multiplier_bps / 10k)      (the persona's multiplier, within bounds)
    provider_cost = ceil(chars × provider_cost[model] / 10k)
    floor         = ceil(provider_cost × margin_floor_bps / 10k)
    creator_share = (amount − provider_cost − floor) × creator_share_bps // 10k
    platform_share = amount − creator_share

so platform_share − provider_cost ≥ floor always: the creator is paid from the margin above the floor, never from
the provider's cost. The `max(…)` only lifts a call whose per-call rounding would otherwise dip under the floor;
configs whose lowest multiplier could price a model under cost + floor are refused at start.

Chat (a persona's conversation turn) is priced per 1,000 tokens by the same floor rule, without a multiplier and
without a creator share — the creator earns on the TTS part of a turn only (priced by `charge` above):

    chat_amount        = max(ceil(tokens × chat_list_price_per_1k / 1k), chat_provider_cost + floor)
    chat_provider_cost = ceil(tokens × chat_provider_cost_per_1k / 1k)
    chat creator_share = 0, chat platform_share = chat_amount
"""

from __future__ import annotations

from dataclasses import dataclass, field

BPS = 10_000  # basis points: 1× = 10,000
PER = 10_000  # prices are per 10,000 characters
PER_TOKENS = 1_000  # chat prices are per 1,000 tokens


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Charge:
    """One call's price and where it goes; creator_share + platform_share == amount always."""

    model: str
    chars: int
    unit_price: int  # micro-CNY per 10,000 chars, after the persona's multiplier
    amount: int  # what the caller pays
    provider_cost: int  # what the provider charges the platform for the call
    creator_share: int
    platform_share: int  # amount − creator_share; platform_share − provider_cost ≥ floor

    @property
    def margin(self) -> int:
        return self.platform_share - self.provider_cost


@dataclass(frozen=True)
class ChatCharge:
    """A chat reply's tokens priced: all of it is the platform's (creator_share = 0; creators earn on the TTS)."""

    tokens: int
    unit_price: int  # micro-CNY per 1,000 tokens
    amount: int
    provider_cost: int
    creator_share: int = 0

    @property
    def platform_share(self) -> int:
        return self.amount

    @property
    def margin(self) -> int:
        return self.amount - self.provider_cost


@dataclass(frozen=True)
class CloneFee:
    """What a creator pays for a provider clone (charged once per clone the provider bills; never a duplicate)."""

    amount: int
    provider_cost: int


@dataclass(frozen=True)
class PriceBook:
    """configs/billing/*.yaml."""

    currency: str = "CNY"
    list_price_per_10k: dict[str, int] = field(default_factory=dict)
    provider_cost_per_10k: dict[str, int] = field(default_factory=dict)
    clone_cost: int = 0  # what the provider charges per clone
    clone_fee: int = 0  # what the creator pays per clone (≥ clone_cost)
    creator_share_bps: int = 7000  # of the margin above the floor
    margin_floor_bps: int = 1000  # platform revenue − provider cost ≥ this share of the provider cost
    multiplier_bps_min: int = 5000
    multiplier_bps_max: int = 50000
    multiplier_bps_default: int = 10000
    trial_credit: int = 2_000_000  # micro-CNY granted at sign-up (¥2)
    key_monthly_spend_cap: int = 0  # micro-CNY per API key per calendar month; 0 = no cap
    key_requests_per_minute: int = 0  # per API key, per replica; 0 = no limit
    settlement_period_days: int = 7
    minimum_payout: int = 1
    wei_per_micro: int = 1
    chat_list_price_per_1k_tokens: int = 0  # micro-CNY per 1,000 chat tokens (prompt + completion)
    chat_provider_cost_per_1k_tokens: int = 0  # what the provider charges for them

    def __post_init__(self) -> None:
        if not 0 <= self.creator_share_bps <= BPS:
            raise ValueError("creator_share_bps must be within 0..10000")
        if self.margin_floor_bps < 0:
            raise ValueError("margin_floor_bps must be ≥ 0")
        if not 0 < self.multiplier_bps_min <= self.multiplier_bps_default <= self.multiplier_bps_max:
            raise ValueError("multiplier bounds must satisfy 0 < min ≤ default ≤ max")
        for table in (self.list_price_per_10k, self.provider_cost_per_10k):
            if any(not isinstance(v, int) or v < 0 for v in table.values()):
                raise ValueError("prices must be non-negative integers (micro-CNY)")
        money = (
            "clone_cost",
            "clone_fee",
            "trial_credit",
            "key_monthly_spend_cap",
            "key_requests_per_minute",
            "chat_list_price_per_1k_tokens",
            "chat_provider_cost_per_1k_tokens",
        )
        for name in (*money, "minimum_payout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0")
        if self.clone_fee < self.clone_cost:
            raise ValueError("clone_fee must cover clone_cost")
        for model, price in self.list_price_per_10k.items():
            if model not in self.provider_cost_per_10k:
                raise ValueError(f"model {model!r} has a list price but no provider cost")
            cost = self.provider_cost_per_10k[model]
            lowest = price * self.multiplier_bps_min
            if lowest < cost * (BPS + self.margin_floor_bps):
                raise ValueError(
                    f"{model}: the lowest multiplier prices it under provider cost + floor; raise the list "
                    "price or multiplier_bps_min"
                )

        chat_cost = self.chat_provider_cost_per_1k_tokens
        if self.chat_list_price_per_1k_tokens * BPS < chat_cost * (BPS + self.margin_floor_bps):
            raise ValueError("chat: the list price per 1k tokens must cover provider cost + floor")

    @property
    def models(self) -> list[str]:
        return list(self.list_price_per_10k)

    def list_price(self, model: str) -> int:
        try:
            return self.list_price_per_10k[model]
        except KeyError:
            raise ValueError(f"no price for model {model!r}") from None

    def check_multiplier(self, multiplier_bps: int) -> int:
        if not self.multiplier_bps_min <= multiplier_bps <= self.multiplier_bps_max:
            raise ValueError(
                f"price multiplier must be within {self.multiplier_bps_min}–{self.multiplier_bps_max} "
                "basis points (10000 = the list price)"
            )
        return multiplier_bps

    def unit_price(self, model: str, multiplier_bps: int) -> int:
        return ceil_div(self.list_price(model) * multiplier_bps, BPS)

    def charge(self, model: str, chars: int, multiplier_bps: int) -> Charge:
        """Price `chars` characters spoken with `model` by a persona whose multiplier is `multiplier_bps`."""
        if chars < 0:
            raise ValueError("chars must be non-negative")
        unit = self.unit_price(model, multiplier_bps)
        provider_cost = ceil_div(chars * self.provider_cost_per_10k[model], PER)
        floor = ceil_div(provider_cost * self.margin_floor_bps, BPS)
        amount = max(ceil_div(chars * unit, PER), provider_cost + floor)
        creator = (amount - provider_cost - floor) * self.creator_share_bps // BPS
        return Charge(model, chars, unit, amount, provider_cost, creator, amount - creator)

    def chat_charge(self, tokens: int) -> ChatCharge:
        """Price `tokens` chat tokens (prompt + completion): the floor rule, no multiplier, no creator share."""
        if tokens < 0:
            raise ValueError("tokens must be non-negative")
        provider_cost = ceil_div(tokens * self.chat_provider_cost_per_1k_tokens, PER_TOKENS)
        floor = self.floor(provider_cost)
        amount = max(ceil_div(tokens * self.chat_list_price_per_1k_tokens, PER_TOKENS), provider_cost + floor)
        return ChatCharge(tokens, self.chat_list_price_per_1k_tokens, amount, provider_cost)

    def floor(self, provider_cost: int) -> int:
        return ceil_div(provider_cost * self.margin_floor_bps, BPS)

    def clone(self) -> CloneFee:
        return CloneFee(self.clone_fee, self.clone_cost)

    def to_wei(self, micro: int) -> int:
        return micro * self.wei_per_micro

    def from_wei(self, wei: int) -> int:
        """Whole micro-CNY in `wei` (a deposit's remainder under one micro-CNY is not credited)."""
        return wei // self.wei_per_micro
