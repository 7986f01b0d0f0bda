"""The one price function and settlement arithmetic: integer money, rounding up once, shares that add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bentos.billing.pricing import PriceBook
from bentos.billing.settlement import settle_creator
from bentos.core.accounts import sign_up
from bentos.core.errors import PlatformError
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Persona, Settlement, UsageEvent

chars = st.integers(min_value=0, max_value=100_000)
prices = st.integers(min_value=0, max_value=10**9)
shares = st.integers(min_value=0, max_value=10_000)


@given(chars, prices, shares)
def test_a_charge_rounds_up_once_and_its_shares_add_up(n: int, unit: int, bps: int) -> None:
    charge = PriceBook(creator_share_bps=bps).charge(n, unit)
    assert charge.creator_share + charge.platform_share == charge.amount
    assert (charge.amount - 1) * 10_000 < n * unit <= charge.amount * 10_000  # rounded up, once
    assert 0 <= charge.creator_share <= charge.amount
    assert all(isinstance(v, int) for v in (charge.amount, charge.creator_share, charge.platform_share))


@given(st.lists(st.tuples(chars, prices), max_size=30), shares)
def test_shares_of_many_calls_sum_to_what_callers_paid(calls: list[tuple[int, int]], bps: int) -> None:
    book = PriceBook(creator_share_bps=bps)
    charges = [book.charge(n, unit) for n, unit in calls]
    assert sum(c.creator_share for c in charges) + sum(c.platform_share for c in charges) == sum(
        c.amount for c in charges
    )


def test_bad_price_books_are_refused() -> None:
    with pytest.raises(ValueError):
        PriceBook(creator_share_bps=10_001)
    with pytest.raises(ValueError):
        PriceBook(list_price_per_10k={"step-tts-2": -1})
    with pytest.raises(ValueError):
        PriceBook().charge(-1, 100)


def test_settling_claims_every_unsettled_row_once_and_balances(tmp_path: Path) -> None:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/bill.db"))
    migrate(engine)
    sessions = session_factory(engine)
    book = PriceBook(creator_share_bps=7000, minimum_payout=1)
    with sessions.begin() as session:
        creator, _ = sign_up(session, "C", "c@example.com", "creator", "0x" + "ab" * 20)
        caller, _ = sign_up(session, "U", "u@example.com", "consumer", None)
        persona = Persona(id="vp_1", creator_id=creator.id, name="P", price_per_10k_chars=56_000_000,
                          consent_statement="mine", model="step-tts-2")  # fmt: skip
        session.add(persona)
        session.flush()
        for i, n in enumerate([7, 120, 999]):
            charge = book.charge(n, persona.price_per_10k_chars)
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
    with sessions.begin() as session, pytest.raises(PlatformError) as nothing:
        settle_creator(session, creator, book)
    assert nothing.value.code == "nothing_to_settle"
    engine.dispose()
