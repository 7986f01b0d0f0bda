"""Money for display only: the platform counts integer micro-CNY (1 CNY = 1,000,000) and prices every call
itself (`GET /voices/{id}/quote`, the ledger); the UI formats its amounts and never computes one.

Amounts show to the cent (`format_cny`); the exact value is one hover away (`exactly` → a `help=` tooltip)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO_PER_CNY = 1_000_000  # the API's money unit ("unit": "micro"; GET /v1/limits → prices.microPerUnit)


CENT = MICRO_PER_CNY // 100


def format_cny(micro: int) -> str:
    """An amount as shown: `1_500_000` → `"¥1.50"`, `65_100` → `"¥0.07"` (to the cent, half up); a non-zero
    amount under half a cent is `"<¥0.01"`, never a misleading `"¥0.00"`. The exact value: `exact_cny`."""
    micro = int(micro)
    sign = "-" if micro < 0 else ""
    cents = (abs(micro) + CENT // 2) // CENT
    if cents == 0 and micro != 0:
        return f"{sign}<¥0.01"
    whole, frac = divmod(cents, 100)
    return f"{sign}¥{whole:,}.{frac:02d}"


def exact_cny(micro: int) -> str:
    """Every micro-yuan, for a tooltip or a statement: `12_345` → `"¥0.012345"`, `1_500_000` → `"¥1.50"`."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(int(micro)), MICRO_PER_CNY)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}¥{whole:,}.{digits}"


def exactly(*micros: int) -> str | None:
    """The `help=` (hover) text for amounts shown rounded: None when rounding changed none of them."""
    changed = [exact_cny(m) for m in micros if exact_cny(m) != format_cny(m)]
    return f"Exactly {', '.join(changed)}" if changed else None


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
