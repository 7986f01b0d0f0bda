"""The outbox: intents commit with the state change that caused them and reach the chain exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain import ChainInputError
from bentos.chain.outbox import Outbox, OutboxConflict, OutboxDispatcher, OutboxItem, OutboxStatus
from tests.chain.chain_harness import ChainHarness, h

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class SimulatedCrash(BaseException):
    """The process dying at a hook: nothing after it runs (a BaseException, so no handler catches it)."""


def create_outbox_table(engine: Engine) -> None:
    OutboxItem.metadata.create_all(engine, tables=[OutboxItem.__table__])  # type: ignore[list-item]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An empty outbox table in a SQLite file, or in a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'platform.db'}")
        create_outbox_table(engine)
        yield engine
        engine.dispose()
        return
    schema = f"chain_outbox_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable: {type(exc).__name__}")
    engine = create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        create_outbox_table(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def register_intent(chain: ChainHarness, persona_id: str) -> dict[str, str]:
    return {
        "persona_id": persona_id,
        "embedding_hash": h(f"emb-{persona_id}"),
        "metadata_hash": h("meta"),
        "creator": chain.creator_address(0),
    }


def item(engine: Engine, intent_key: str) -> OutboxItem:
    with Session(engine) as session:
        found = Outbox.get(session, intent_key)
        assert found is not None
        return found


def test_an_intent_rolls_back_with_the_transaction_that_caused_it(
    engine: Engine, tester_chain: ChainHarness
) -> None:
    with Session(engine) as session, session.begin():
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_kept"), "register:p_kept")
    with Session(engine) as session:
        session.begin()
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_lost"), "register:p_lost")
        session.rollback()  # e.g. the persona row failed to save: its chain intent must vanish too

    with Session(engine) as session:
        keys = session.scalars(select(OutboxItem.intent_key)).all()
    assert keys == ["register:p_kept"]


def test_an_intent_key_is_recorded_at_most_once(engine: Engine, tester_chain: ChainHarness) -> None:
    intent = register_intent(tester_chain, "p_one")
    with Session(engine) as session, session.begin():
        first = Outbox.enqueue(session, "register", intent, "register:p_one")
        again = Outbox.enqueue(session, "register", dict(intent), "register:p_one")
        first_id = first.id
        assert again.id == first_id
        with pytest.raises(OutboxConflict):
            Outbox.enqueue(session, "register", {**intent, "metadata_hash": h("other")}, "register:p_one")
        with pytest.raises(ChainInputError):
            Outbox.enqueue(session, "register", {**intent, "embedding_hash": "0xnothex"}, "register:p_bad")
        with pytest.raises(ChainInputError):
            Outbox.enqueue(session, "mint", {}, "mint:x")
    with Session(engine) as session:
        assert session.scalars(select(OutboxItem.id)).all() == [first_id]


def test_dispatch_sends_each_intent_once_and_records_its_receipt(
    engine: Engine, tester_chain: ChainHarness
) -> None:
    registry = tester_chain.registry
    alice, bob = tester_chain.creator_address(0), tester_chain.creator_address(1)
    with Session(engine) as session, session.begin():
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_d"), "register:p_d")
        Outbox.enqueue(session, "revoke", {"persona_id": "p_d"}, "revoke:p_d")
        payouts = {alice: 600, bob: 400}
        Outbox.enqueue(
            session, "settle", {"settlement_id": "st_d", "usage_digest": h("u"), "payouts": payouts}, "st_d"
        )
    before = registry.transaction_count()

    report = OutboxDispatcher(engine, registry).dispatch_pending()

    assert report.confirmed == ["register:p_d", "revoke:p_d", "st_d"] and not report.failed
    assert registry.transaction_count() == before + 3
    assert registry.verify("p_d", h("emb-p_d")).status == "revoked"
    assert (registry.balance_of(alice), registry.balance_of(bob)) == (600, 400)
    for key in ("register:p_d", "revoke:p_d", "st_d"):
        row = item(engine, key)
        assert row.status == OutboxStatus.CONFIRMED and row.tx_hash and row.block_number and row.gas_used
        assert row.signer == registry.signer_address and row.attempts == 1
    assert (
        OutboxDispatcher(engine, registry).dispatch_pending().confirmed == []
    )  # nothing left, nothing resent
    assert registry.transaction_count() == before + 3


def test_a_reverting_intent_fails_with_its_reason_code(engine: Engine, tester_chain: ChainHarness) -> None:
    tester_chain.registry.register_persona("p_taken", h("e"), h("m"), tester_chain.creator_address(0))
    with Session(engine) as session, session.begin():
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_taken"), "register:p_taken")
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_free"), "register:p_free")

    report = OutboxDispatcher(engine, tester_chain.registry).dispatch_pending()

    assert report.failed == ["register:p_taken"] and report.confirmed == ["register:p_free"]
    failed = item(engine, "register:p_taken")
    assert failed.status == OutboxStatus.FAILED and failed.error_code == "persona_already_registered"


def test_a_crash_after_recording_resends_the_same_signed_transaction(
    engine: Engine, tester_chain: ChainHarness
) -> None:
    registry = tester_chain.registry
    with Session(engine) as session, session.begin():
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_c1"), "register:p_c1")
    before = registry.transaction_count()

    def die(intent_key: str, tx_hash: str) -> None:
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        OutboxDispatcher(engine, registry, after_record=die).dispatch_pending()
    recorded = item(engine, "register:p_c1")
    assert recorded.status == OutboxStatus.SENT and recorded.tx_hash and recorded.raw_tx
    assert registry.lookup(recorded.tx_hash) == "unknown"  # it never left the process

    report = OutboxDispatcher(sessionmaker(engine), registry).reconcile()  # "the restarted process"

    assert report.resent == ["register:p_c1"] and report.confirmed == ["register:p_c1"]
    assert item(engine, "register:p_c1").tx_hash == recorded.tx_hash  # the same bytes, not a re-signed tx
    assert registry.transaction_count() == before + 1


def test_a_crash_after_broadcast_is_confirmed_without_resending(
    engine: Engine, tester_chain: ChainHarness
) -> None:
    registry = tester_chain.registry
    with Session(engine) as session, session.begin():
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_c2"), "register:p_c2")
        Outbox.enqueue(session, "register", register_intent(tester_chain, "p_c3"), "register:p_c3")
    before = registry.transaction_count()

    def die(intent_key: str, tx_hash: str) -> None:
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        OutboxDispatcher(engine, registry, after_broadcast=die).dispatch_pending()
    assert item(engine, "register:p_c2").status == OutboxStatus.SENT
    assert item(engine, "register:p_c3").status == OutboxStatus.PENDING

    report = OutboxDispatcher(engine, registry).dispatch_pending()

    assert report.resent == [] and report.confirmed == ["register:p_c2", "register:p_c3"]
    assert registry.transaction_count() == before + 2
    assert len(registry.events("PersonaRegistered")) == 2
