"""Money for display: the platform counts integer micro-CNY (1 CNY = 1,000,000); the UI formats it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICRO_PER_CNY = 1_000_000


def format_cny(micro: int) -> str:
    """`1_500_000` → `"¥1.50"`, `12_345` → `"¥0.012345"`: at least 2 decimals, never hides a micro-yuan."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(int(micro)), MICRO_PER_CNY)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}¥{whole:,}.{digits}"


def cny_to_micro(cny: float | str | Decimal) -> int:
    """A price typed in yuan → integer micro-CNY (rounded half-up; decimal arithmetic, never float)."""
    return int((Decimal(str(cny)) * MICRO_PER_CNY).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micro_to_cny(micro: int) -> float:
    """For number inputs only (which need a float); never for arithmetic."""
    return float(Decimal(micro) / MICRO_PER_CNY)


def estimated_cost(chars: int, price_per_10k_chars: int) -> int:
    """What `chars` characters cost at a persona's list price, in micro-CNY (the ledger's amount wins)."""
    return (chars * price_per_10k_chars + 5_000) // 10_000
