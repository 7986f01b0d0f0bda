"""The one price function and settlement arithmetic: integer money, rounding up once, shares that add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bentos.billing.pricing import PriceBook
from bentos.billing.settlement import settle_creator, usage_digest
from bentos.core.accounts import sign_up
from bentos.core.errors import PlatformError
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Persona, Settlement, UsageEvent

MODELS = {"step-tts-mini": (1_800_000, 900_000), "step-tts-2": (5_600_000, 2_800_000), "x": (11, 7)}
chars = st.integers(min_value=0, max_value=100_000)
shares = st.integers(min_value=0, max_value=10_000)
floors = st.integers(min_value=0, max_value=5_000)


@st.composite
def price_books(draw: st.DrawFn) -> PriceBook:
    """Any config the PriceBook accepts: its lowest multiplier still covers provider cost + floor."""
    floor = draw(floors)
    lists, costs = {}, {}
    for model in draw(st.lists(st.sampled_from(sorted(MODELS)), min_size=1, unique=True)):
        cost = draw(st.integers(min_value=0, max_value=10**8))
        lists[model], costs[model] = draw(st.integers(min_value=cost * 2 + 1, max_value=10**9)), cost
    lowest = max(
        -(-costs[m] * (10_000 + floor) * 10_000 // max(lists[m] * 10_000, 1)) for m in lists
    )  # the smallest multiplier (bps) pricing every model at ≥ cost + floor
    low = draw(st.integers(min_value=max(1, lowest), max_value=max(1, lowest) + 20_000))
    high = draw(st.integers(min_value=low, max_value=low + 100_000))
    return PriceBook(
        list_price_per_10k=lists,
        provider_cost_per_10k=costs,
        creator_share_bps=draw(shares),
        margin_floor_bps=floor,
        multiplier_bps_min=low,
        multiplier_bps_max=high,
        multiplier_bps_default=low,
    )


@given(price_books(), chars, st.data())
def test_every_call_keeps_the_margin_floor_and_its_shares_add_up(
    book: PriceBook, n: int, data: st.DataObject
) -> None:
    model = data.draw(st.sampled_from(book.models))
    multiplier = data.draw(st.integers(book.multiplier_bps_min, book.multiplier_bps_max))
    charge = book.charge(model, n, multiplier)
    assert charge.creator_share + charge.platform_share == charge.amount
    assert charge.platform_share - charge.provider_cost >= book.floor(charge.provider_cost)  # the rule
    assert 0 <= charge.creator_share <= charge.amount
    unit = book.unit_price(model, multiplier)
    assert charge.amount >= -(-n * unit // 10_000)  # never under the persona's price, rounded up once
    assert (
        (charge.provider_cost - 1) * 10_000
        < n * book.provider_cost_per_10k[model]
        <= charge.provider_cost * 10_000
    )
    assert all(isinstance(v, int) for v in (charge.amount, charge.creator_share, charge.provider_cost))


@given(price_books(), st.lists(chars, max_size=30), st.data())
def test_shares_of_many_calls_sum_to_what_callers_paid(
    book: PriceBook, calls: list[int], data: st.DataObject
) -> None:
    model = data.draw(st.sampled_from(book.models))
    charges = [book.charge(model, n, book.multiplier_bps_default) for n in calls]
    assert sum(c.creator_share + c.platform_share for c in charges) == sum(c.amount for c in charges)


def test_the_model_spoken_sets_the_price_not_the_personas_default() -> None:
    book = PriceBook(
        list_price_per_10k={"step-tts-mini": 1_800_000, "step-tts-2": 5_600_000},
        provider_cost_per_10k={"step-tts-mini": 900_000, "step-tts-2": 2_800_000},
        multiplier_bps_min=7000,
    )
    assert book.charge("step-tts-mini", 10_000, 10_000).unit_price == 1_800_000
    assert book.charge("step-tts-2", 10_000, 10_000).unit_price == 5_600_000
    assert book.charge("step-tts-2", 10_000, 15_000).amount == 8_400_000


def test_default_prices_no_longer_lose_money_on_a_call() -> None:
    """Before: the creator got 70 % of the gross while the provider cost 50 % of list — the platform lost 20 %."""
    from hydra.utils import instantiate

    from bentos.core.config import load_config

    book: PriceBook = instantiate(load_config([]).billing, _convert_="all")
    for model in book.models:
        for multiplier in (book.multiplier_bps_min, book.multiplier_bps_default, book.multiplier_bps_max):
            charge = book.charge(model, 1_000, multiplier)
            assert charge.margin >= book.floor(charge.provider_cost) > 0, (model, multiplier)
    assert book.clone_fee >= book.clone_cost


def test_bad_price_books_are_refused() -> None:
    costs = {"step-tts-2": 2_800_000}
    with pytest.raises(ValueError):
        PriceBook(creator_share_bps=10_001)
    with pytest.raises(ValueError):
        PriceBook(list_price_per_10k={"step-tts-2": -1}, provider_cost_per_10k=costs)
    with pytest.raises(ValueError, match="under provider cost"):  # 0.5 × list is below cost + floor
        PriceBook(
            list_price_per_10k={"step-tts-2": 5_600_000}, provider_cost_per_10k=costs, multiplier_bps_min=5000
        )
    with pytest.raises(ValueError, match="no provider cost"):
        PriceBook(list_price_per_10k={"step-tts-2": 5_600_000})
    with pytest.raises(ValueError):
        PriceBook(clone_cost=10, clone_fee=9)
    book = PriceBook(
        list_price_per_10k={"step-tts-2": 5_600_000}, provider_cost_per_10k=costs, multiplier_bps_min=7000
    )
    with pytest.raises(ValueError):
        book.charge("step-tts-2", -1, 10_000)
    with pytest.raises(ValueError, match="multiplier"):
        book.check_multiplier(0)


def test_settling_claims_every_unsettled_row_once_and_balances(tmp_path: Path) -> None:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/bill.db"))
    migrate(engine)
    sessions = session_factory(engine)
    book = PriceBook(
        list_price_per_10k={"step-tts-2": 5_600_000},
        provider_cost_per_10k={"step-tts-2": 2_800_000},
        creator_share_bps=7000,
        multiplier_bps_min=7000,
        minimum_payout=1,
    )
    with sessions.begin() as session:
        creator, _ = sign_up(session, "C", "c@example.com", "creator", "0x" + "ab" * 20)
        caller, _ = sign_up(session, "U", "u@example.com", "consumer", None)
        persona = Persona(id="vp_1", creator_id=creator.id, name="P", price_per_10k_chars=56_000_000,
                          consent_statement="mine", model="step-tts-2")  # fmt: skip
        session.add(persona)
        session.flush()
        for i, n in enumerate([7, 120, 999]):
            charge = book.charge("step-tts-2", n, 10_000)
            session.add(UsageEvent(request_id=f"r{i}", caller_id=caller.id, persona_id="vp_1",
                                   creator_id=creator.id, chars=n, audio_ms=1000, model="step-tts-2",
                                   unit_price=charge.unit_price, amount=charge.amount,
                                   creator_share=charge.creator_share, platform_share=charge.platform_share))  # fmt: skip
    with sessions.begin() as session:
        settlement = settle_creator(session, creator, book)
    with sessions() as session:
        rows = session.scalars(select(UsageEvent)).all()
        stored = session.get(Settlement, settlement.id)
        assert stored is not None
        assert all(r.settlement_id == settlement.id for r in rows)
        assert stored.amount == sum(r.amount for r in rows)
        assert stored.creator_amount + stored.platform_amount == stored.amount
        assert stored.creator_amount == sum(r.creator_share for r in rows)
        # The streamed digest is the anchored definition.
        assert stored.usage_digest == usage_digest(list(rows))
    with sessions.begin() as session, pytest.raises(PlatformError) as nothing:
        settle_creator(session, creator, book)
    assert nothing.value.code == "nothing_to_settle"
    engine.dispose()
