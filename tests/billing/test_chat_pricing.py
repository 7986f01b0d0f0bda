"""Chat tokens are priced by the same floor rule as speech, with no multiplier and no creator share."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from bentos.billing.pricing import PriceBook

DEFAULT = Path(__file__).resolve().parents[2] / "configs" / "billing" / "default.yaml"


def _book(price: int, cost: int, floor_bps: int) -> PriceBook:
    return PriceBook(
        chat_list_price_per_1k_tokens=price, chat_provider_cost_per_1k_tokens=cost, margin_floor_bps=floor_bps
    )


@given(
    tokens=st.integers(0, 2_000_000),
    cost=st.integers(0, 100_000),
    markup=st.integers(0, 50_000),
    floor_bps=st.integers(0, 5_000),
)
def test_a_chat_charge_keeps_the_floor_and_pays_no_creator(
    tokens: int, cost: int, markup: int, floor_bps: int
) -> None:
    price = -(-cost * (10_000 + floor_bps) // 10_000) + markup
    charge = _book(price, cost, floor_bps).chat_charge(tokens)
    assert charge.creator_share == 0 and charge.platform_share == charge.amount
    assert charge.margin >= -(-charge.provider_cost * floor_bps // 10_000)
    assert (
        charge.amount >= tokens * price / 1_000
        and charge.amount - tokens * price / 1_000 < 1 + charge.provider_cost
    )


def test_the_default_price_book_prices_chat() -> None:
    book: PriceBook = instantiate(OmegaConf.load(DEFAULT), _convert_="all")
    charge = book.chat_charge(1_000)
    assert charge.amount == book.chat_list_price_per_1k_tokens > charge.provider_cost > 0


def test_a_chat_price_under_cost_and_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="chat"):
        _book(10_000, 10_000, 1_000)
