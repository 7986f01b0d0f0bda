"""The double-entry ledger under random interleavings of top-ups, calls, retries, cut streams, provider failures,
crashes, settlements and their payouts confirmed or failed on chain: it balances, no holder's book goes below
zero, each request id is billed at most once, every call keeps the margin floor, a caller's balance is exactly
what they put in minus what they were billed, each usage row is in at most one live settlement, and what the
ledger paid out is what the chain confirmed."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds, ledger, settlement
from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import (
    Funding,
    InsufficientFunds,
    caller_book,
    creator_book,
    hold_book,
    paid_book,
    payout_book,
)
from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import OutboxStatus
from bentos.core.accounts import sign_up
from bentos.core.errors import PlatformError
from bentos.devkit.harness import pg_schema
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Account, Hold, LedgerEntry, OutboxItem, Persona, Settlement, UsageEvent

BOOK = PriceBook(
    list_price_per_10k={"step-tts-mini": 1_800_000, "step-tts-2": 5_600_000},
    provider_cost_per_10k={"step-tts-mini": 900_000, "step-tts-2": 2_800_000},
    multiplier_bps_min=7000,
    clone_cost=9_900_000,
    clone_fee=12_000_000,
)


@dataclass
class World:
    sessions: sessionmaker[Session]
    callers: list[str]
    creator: str
    persona: Persona


def _world(url: str, pool_size: int = 10) -> World:
    engine = make_engine(DatabaseSettings(url=url, pool_size=pool_size))
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        creator, _ = sign_up(session, "C", "c@example.com", "creator", "0x" + "ab" * 20)
        callers = [sign_up(session, f"U{i}", f"u{i}@example.com", "consumer", None)[0].id for i in range(2)]
        persona = Persona(id="vp_1", creator_id=creator.id, name="P", price_per_10k_chars=0,
                          price_multiplier_bps=13_000, consent_statement="mine", model="step-tts-2")  # fmt: skip
        session.add(persona)
        creator_id = creator.id
    with sessions() as session:
        stored = session.get(Persona, "vp_1")
        assert stored is not None
    return World(sessions, callers, creator_id, stored)


def _call(world: World, caller: str, request_id: str, chars: int, model: str, outcome: str) -> str:
    """One speech call as the platform makes it: reserve, then capture (complete/cut) or release (failed);
    'crash' reserves and never settles (the sweeper releases it). Returns what happened."""
    charge = BOOK.charge(model, chars, world.persona.price_multiplier_bps)
    try:
        hold = holds.reserve(
            world.sessions,
            hold_id=f"h{next(_ids)}",
            account_id=caller,
            api_key_id=None,
            purpose=holds.Purpose.SPEECH,
            subject=request_id,
            amount=charge.amount,
        )
    except InsufficientFunds:
        return "refused"
    if outcome == "crash":
        return "crashed"
    if outcome == "failed":
        holds.release(world.sessions, hold.hold_id, "provider failed")
        return "released"
    if outcome == "partial":  # a long text cut short: only the delivered part is billed, the rest goes back
        charge = BOOK.charge(model, chars // 2, world.persona.price_multiplier_bps)
    _, created = holds.capture_speech(world.sessions, hold, charge, request_id=request_id, caller_id=caller,
                                      api_key_id=None, persona=world.persona, audio_ms=1000)  # fmt: skip
    return "billed" if created else "duplicate"


_ids = itertools.count()


def _check_invariants(world: World, credited: dict[str, int]) -> None:
    with world.sessions() as session:
        assert ledger.unbalanced_transactions(session) == []
        assert ledger.cache_mismatches(session) == {}
        assert session.scalar(select(func.sum(LedgerEntry.amount))) in (0, None)  # money is conserved
        books = session.scalars(select(LedgerEntry.book).distinct()).all()
        for book, balance in ledger.balances(session, books).items():
            if book.split(":")[0] in ("caller", "hold", "creator", "payout"):
                assert balance >= 0, book
        ids = session.scalars(select(UsageEvent.request_id)).all()
        assert len(ids) == len(set(ids))  # each request id billed at most once
        for row in session.scalars(select(UsageEvent)):
            assert row.platform_share - row.provider_cost >= BOOK.floor(row.provider_cost)
            assert row.creator_share + row.platform_share == row.amount
        for caller in world.callers:
            books = ledger.balances(session, [caller_book(caller), hold_book(caller)])
            billed = session.scalar(
                select(func.coalesce(func.sum(UsageEvent.amount), 0)).where(UsageEvent.caller_id == caller)
            )
            held = session.scalar(
                select(func.coalesce(func.sum(Hold.amount), 0)).where(
                    Hold.account_id == caller, Hold.status == holds.HoldStatus.HELD
                )
            )
            assert books[hold_book(caller)] == held
            assert books[caller_book(caller)] == credited.get(caller, 0) - billed - held


operation = st.one_of(
    st.tuples(st.just("topup"), st.integers(0, 1), st.integers(1, 3_000_000), st.integers(0, 5)),
    st.tuples(
        st.just("call"),
        st.integers(0, 1),
        st.integers(0, 6),  # request ids repeat: retries and replays of the same request
        st.integers(1, 1_000),
        st.sampled_from(["step-tts-mini", "step-tts-2"]),
        st.sampled_from(["complete", "cut", "partial", "failed", "crash"]),
    ),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("settle")),
    st.tuples(st.just("payout"), st.sampled_from(["confirmed", "failed"])),
)


@pytest.fixture
def world_factory(tmp_path: Path) -> Iterator[object]:
    made = itertools.count()

    def make() -> World:
        return _world(f"sqlite:///{tmp_path}/ledger-{next(made)}.db")

    yield make


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_random_interleavings_keep_the_ledger_exact(world_factory, ops: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    world: World = world_factory()
    credited: dict[str, int] = {}
    for op in ops:
        if op[0] == "topup":
            _, who, amount, ref = op
            caller = world.callers[who]
            with world.sessions.begin() as session:  # a replayed chain event or grant: same reference
                posted = credit_in(session, Credit(caller, amount, Funding.CRYPTO, f"deposit:{who}:{ref}"))
            if posted.created:
                credited[caller] = credited.get(caller, 0) + amount
        elif op[0] == "call":
            _, who, request, chars, model, outcome = op
            _call(world, world.callers[who], f"req-{who}-{request}", chars, model, outcome)
        elif op[0] == "sweep":  # the platform died mid-call: its holds are released
            with world.sessions() as session:
                stale = session.scalars(select(Hold.id).where(Hold.status == holds.HoldStatus.HELD)).all()
            for hold_id in stale:
                holds.release(world.sessions, hold_id, "swept")
        elif op[0] == "settle":
            _settle(world)
        else:  # the chain's verdict on the oldest pending payout, applied as the money loop does
            _payout_outcome(world, op[1])
        _check_invariants(world, credited)
        _check_settlements(world)


def _settle(world: World) -> None:
    with world.sessions.begin() as session:
        creator = session.get_one(Account, world.creator)
        try:
            settlement.settle_creator(session, creator, BOOK)
        except PlatformError as err:
            assert err.code == "nothing_to_settle"


def _payout_outcome(world: World, outcome: str) -> None:
    with world.sessions.begin() as session:
        pending = session.scalars(
            select(Settlement)
            .where(Settlement.status == OutboxStatus.PENDING.value)
            .order_by(Settlement.created_at)
        ).first()
        if pending is None:
            return
        item = session.scalar(
            select(OutboxItem).where(OutboxItem.intent_key == settlement.intent_key(pending))
        )
        assert item is not None
        item.status = outcome
        item.tx_hash = "0x" + "ab" * 32
    settlement.follow_payouts(world.sessions)


def _check_settlements(world: World) -> None:
    """Each usage row is in at most one confirmed settlement; what the ledger paid is what settled on chain."""
    with world.sessions() as session:
        rows = session.scalars(select(UsageEvent)).all()
        settled = {s.id: s for s in session.scalars(select(Settlement))}
        for s in settled.values():
            mine = [r for r in rows if r.settlement_id == s.id]
            if s.status == OutboxStatus.FAILED.value:
                assert mine == []  # released for the next settlement
            else:
                assert len(mine) == s.usage_count and sum(r.creator_share for r in mine) == s.creator_amount
        confirmed = [s for s in settled.values() if s.status == OutboxStatus.CONFIRMED.value]
        paid = ledger.balance_of(session, paid_book(world.creator))
        assert paid == sum(s.ledger_amount for s in confirmed)  # the chain's deposits = the ledger's payouts
        in_flight = ledger.balance_of(session, payout_book(world.creator))
        assert in_flight == sum(
            s.ledger_amount for s in settled.values() if s.status == OutboxStatus.PENDING.value
        )
        earned = sum(r.creator_share for r in rows)
        assert ledger.balance_of(session, creator_book(world.creator)) + in_flight + paid == earned


def test_a_call_the_balance_cannot_pay_is_refused_and_holds_nothing(tmp_path: Path) -> None:
    world = _world(f"sqlite:///{tmp_path}/short.db")
    caller = world.callers[0]
    with world.sessions.begin() as session:
        credit_in(session, Credit(caller, 100, Funding.TRIAL, f"trial:{caller}"))
    assert _call(world, caller, "r1", 1_000, "step-tts-2", "complete") == "refused"
    with world.sessions() as session:
        assert ledger.balance_of(session, caller_book(caller)) == 100
        assert session.scalar(select(func.count(Hold.id))) == 0
        assert session.scalar(select(func.count(UsageEvent.id))) == 0


def test_a_capture_and_a_release_racing_settle_the_hold_once(tmp_path: Path) -> None:
    world = _world(f"sqlite:///{tmp_path}/race.db")
    caller = world.callers[0]
    with world.sessions.begin() as session:
        credit_in(session, Credit(caller, 10_000_000, Funding.GRANT, "grant:1"))
    charge = BOOK.charge("step-tts-2", 500, world.persona.price_multiplier_bps)
    hold = holds.reserve(world.sessions, hold_id="h-race", account_id=caller, api_key_id=None,
                         purpose=holds.Purpose.SPEECH, subject="r-race", amount=charge.amount)  # fmt: skip
    assert holds.release(world.sessions, hold.hold_id)
    assert not holds.release(world.sessions, hold.hold_id)  # released once
    with pytest.raises(RuntimeError, match="closed before"):
        holds.capture_speech(world.sessions, hold, charge, request_id="r-race", caller_id=caller,
                             api_key_id=None, persona=world.persona, audio_ms=1)  # fmt: skip
    _check_invariants(world, {caller: 10_000_000})


@pytest.mark.slow
def test_32_clients_200_calls_each_with_retries_give_exact_totals_on_postgres() -> None:
    """Concurrency on the real database: every retried request id is billed once, nothing is lost."""
    with pg_schema() as url:
        world = _world(url, pool_size=32)
        for caller in world.callers:
            with world.sessions.begin() as session:
                credit_in(session, Credit(caller, 10**12, Funding.GRANT, f"grant:{caller}"))
        billed: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            caller = world.callers[n % 2]
            try:
                for i in range(200):
                    request_id = (
                        f"c{n}-r{i // 2}"  # every request is sent twice: the retry must not bill again
                    )
                    outcome = _call(world, caller, request_id, 100 + i, "step-tts-mini", "complete")
                    if outcome == "billed":
                        with lock:
                            billed.append(request_id)
            except BaseException as err:  # surfaced below: a thread's exception would otherwise vanish
                errors.append(err)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(billed) == len(set(billed)) == 32 * 100
        with world.sessions() as session:
            assert session.scalar(select(func.count(UsageEvent.id))) == 32 * 100
        credited = {caller: 10**12 for caller in world.callers}
        _check_invariants(world, credited)
        world.sessions.kw["bind"].dispose()
