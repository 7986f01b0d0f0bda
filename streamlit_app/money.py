"""Money for display only: the platform counts integer micro-CNY (1 CNY = 1,000,000) and prices every call
itself (`GET /voices/{id}/quote`, the ledger); the UI formats its amounts and never computes one."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO_PER_CNY = 1_000_000  # the API's money unit ("unit": "micro"; GET /v1/limits → prices.microPerUnit)


def format_cny(micro: int) -> str:
    """`1_500_000` → `"¥1.50"`, `12_345` → `"¥0.012345"`: at least 2 decimals, never hides a micro-yuan."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(int(micro)), MICRO_PER_CNY)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}¥{whole:,}.{digits}"


def cny_to_micro(cny: float | str | Decimal) -> int:
    """A price the user typed in yuan → integer micro-CNY, exactly: a fraction of a micro-yuan is refused
    (`ValueError`) rather than rounded."""
    try:
        micro = Decimal(str(cny)) * MICRO_PER_CNY
    except InvalidOperation:
        raise ValueError(f"{cny!r} is not an amount") from None
    if not micro.is_finite():
        raise ValueError(f"{cny!r} is not an amount")
    if micro != micro.to_integral_value():
        raise ValueError(f"{cny} has more than 6 decimals")
    return int(micro)
