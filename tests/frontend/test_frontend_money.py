"""Money in the UI is formatting and parsing only: amounts come from the platform, never from a local sum."""

from __future__ import annotations

import pytest

from streamlit_app import money


def test_amounts_show_to_the_cent_and_exactly_on_hover() -> None:
    assert money.format_cny(1_500_000) == "¥1.50"
    assert money.format_cny(65_100) == "¥0.07" and money.exactly(65_100) == "Exactly ¥0.0651"
    assert money.format_cny(1) == "<¥0.01" and money.exact_cny(1) == "¥0.000001"
    assert money.format_cny(-2_000_000) == "-¥2.00" and money.exactly(-2_000_000) is None
    assert money.format_cny(1_234_567_890) == "¥1,234.57"


def test_a_typed_price_is_converted_exactly_or_refused() -> None:
    assert money.cny_to_micro(0.1) == 100_000
    assert money.cny_to_micro("1.23") == 1_230_000
    with pytest.raises(ValueError, match="6 decimals"):
        money.cny_to_micro("0.0000005")
    with pytest.raises(ValueError):
        money.cny_to_micro("lots")


def test_no_price_arithmetic_is_left_in_the_ui() -> None:
    assert not hasattr(money, "estimated_cost")
