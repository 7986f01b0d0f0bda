"""Money on chain, on a real EVM (py-evm) and a real database: crypto top-ups credited once, the signed payout
wallet change, settlement cycles paying many creators in one transaction, rollback of a failed payout, recovery
after a kill between the chain and the database, and reconciliation catching a disagreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from sqlalchemy import func, select, update

from bentos.billing import ledger
from bentos.billing.deposits import scan_deposits
from bentos.billing.ledger import caller_book, creator_book, paid_book, payout_book
from bentos.billing.reconciliation import reconcile
from bentos.billing.settlement import follow_payouts, run_due_cycle, settle_creator
from bentos.chain.outbox import OutboxDispatcher, OutboxStatus
from bentos.chain.registry import ChainRegistry, GasLimits
from bentos.core import metrics, wallets
from bentos.core.errors import PlatformError
from bentos.store.models import Account, OutboxItem, Settlement, UsageEvent
from bentos.store.money_models import ChainCursor, ChainDeposit
from tests.billing.money_chain import MoneyWorld, make_world

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path, artifact_dir: str) -> MoneyWorld:
    return make_world(tmp_path, artifact_dir)


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("chain-artifacts"))


def _balance(world: MoneyWorld, book: str) -> int:
    with world.sessions() as session:
        return ledger.balance_of(session, book)


def _sign(key: str, message: str) -> str:
    signed = EthAccount.sign_message(encode_defunct(text=message), private_key=key)
    return "0x" + bytes(signed.signature).hex()


# --- crypto top-ups ----------------------------------------------------------------------------------------


def test_crypto_topup_is_credited_once_under_replayed_events_and_rescanned_blocks(world: MoneyWorld) -> None:
    caller = world.account("consumer")
    _, key = world.wallet(1)
    start = _balance(world, caller_book(caller.id))
    assert caller.deposit_reference
    paid = world.chain.with_signer(key).deposit(caller.deposit_reference, 2_500_000_000_000)  # 2,500 micro

    first = scan_deposits(world.sessions, world.chain, world.prices, confirmations=0)
    assert first is not None and first.credited == [f"deposit:{paid.tx_hash.lower()}:0"]
    assert _balance(world, caller_book(caller.id)) == start + 2_500

    # The same blocks read again (a cursor lost, a replica behind, a replayed event): nothing more.
    with world.sessions.begin() as session:
        session.execute(update(ChainCursor).values(block_number=0))
    again = scan_deposits(world.sessions, world.chain, world.prices, confirmations=0)
    assert again is not None and again.credited == [] and again.seen_before == 1
    assert world.loop().tick(force=True).deposits is None  # nothing new after the head
    assert _balance(world, caller_book(caller.id)) == start + 2_500
    with world.sessions() as session:
        assert session.scalar(select(func.count(ChainDeposit.id))) == 1
        assert ledger.cache_mismatches(session) == {}


def test_a_deposit_waits_for_its_confirmations(world: MoneyWorld) -> None:
    caller = world.account("consumer")
    _, key = world.wallet(1)
    start = _balance(world, caller_book(caller.id))
    assert caller.deposit_reference
    world.chain.with_signer(key).deposit(caller.deposit_reference, 7_000_000_000)
    assert scan_deposits(world.sessions, world.chain, world.prices, confirmations=2) is not None
    assert _balance(world, caller_book(caller.id)) == start  # mined, one confirmation: not yet
    world.chain.with_signer(key).deposit("0x" + "ab" * 32, 1_000_000_000)  # another block on top
    scan_deposits(world.sessions, world.chain, world.prices, confirmations=2)
    assert _balance(world, caller_book(caller.id)) == start + 7


def test_a_deposit_with_an_unknown_reference_is_recorded_and_not_credited(world: MoneyWorld) -> None:
    _, key = world.wallet(2)
    world.chain.with_signer(key).deposit("0x" + "12" * 32, 9_000_000_000)
    scan = scan_deposits(world.sessions, world.chain, world.prices, confirmations=0)
    assert scan is not None and scan.credited == [] and len(scan.unmatched) == 1
    with world.sessions() as session:
        row = session.scalars(select(ChainDeposit)).one()
        assert (row.status, row.account_id, row.amount) == ("unmatched", None, 0)
        assert ledger.balance_of(session, "funding:crypto") == 0


# --- the payout wallet -------------------------------------------------------------------------------------


def test_wallet_change_needs_the_new_wallets_signature_of_a_fresh_challenge(world: MoneyWorld) -> None:
    creator = world.account("creator")
    wallet, key = world.wallet(1)
    _, other_key = world.wallet(2)

    challenge = wallets.wallet_challenge(world.sessions, creator)
    with pytest.raises(PlatformError) as wrong:
        wallets.change_payout_wallet(world.sessions, creator, wallet, _sign(other_key, challenge.message))
    assert (wrong.value.code, wrong.value.status) == ("invalid_signature", 422)
    with pytest.raises(PlatformError) as garbage:
        wallets.change_payout_wallet(world.sessions, creator, wallet, "0x1234")
    assert garbage.value.code == "invalid_signature"

    good = _sign(key, challenge.message)
    changed = wallets.change_payout_wallet(world.sessions, creator, wallet.lower(), good)
    assert changed.payout_wallet == wallet

    with pytest.raises(PlatformError) as reused:
        wallets.change_payout_wallet(world.sessions, creator, wallet, good)
    assert (reused.value.code, reused.value.status) == ("challenge_expired", 410)

    late = wallets.wallet_challenge(world.sessions, creator, now=T0)
    with pytest.raises(PlatformError) as expired:
        wallets.change_payout_wallet(
            world.sessions, creator, wallet, _sign(key, late.message), now=T0 + timedelta(minutes=11)
        )
    assert expired.value.code == "challenge_expired"

    # Another account's challenge proves nothing for this one.
    stranger = world.account("creator")
    theirs = wallets.wallet_challenge(world.sessions, stranger)
    with pytest.raises(PlatformError) as foreign:
        wallets.change_payout_wallet(world.sessions, creator, wallet, _sign(key, theirs.message))
    assert foreign.value.code == "invalid_signature"


# --- settlement cycles -------------------------------------------------------------------------------------


def test_a_cycle_pays_two_creators_in_one_transaction_and_moves_the_ledger(world: MoneyWorld) -> None:
    w1, _ = world.wallet(1)
    w2, _ = world.wallet(2)
    alice, bob = world.account("creator", w1), world.account("creator", w2)
    caller = world.account("consumer")
    earned = {
        alice.id: world.bill(caller, world.persona(alice)) * 1,
        bob.id: sum(world.bill(caller, world.persona(bob), 2000) for _ in range(2)),
    }
    cycle = run_due_cycle(world.sessions, world.prices, T0)
    assert cycle is not None and len(cycle.settlements) == 2 and len(cycle.chain_settlements) == 1
    assert run_due_cycle(world.sessions, world.prices, T0 + timedelta(hours=5)) is None  # claimed once
    for creator_id, x in earned.items():
        assert _balance(world, creator_book(creator_id)) == 0
        assert _balance(world, payout_book(creator_id)) == x

    world.dispatch()
    followed = follow_payouts(world.sessions, world.chain)
    assert sorted(followed.confirmed) == sorted(cycle.settlements)
    with world.sessions() as session:
        rows = session.scalars(select(Settlement)).all()
        assert {s.tx_hash for s in rows} != {None} and len({s.tx_hash for s in rows}) == 1
        assert all(s.block_number and s.confirmed_at and s.status == "confirmed" for s in rows)
    for creator_id, x in earned.items():
        assert _balance(world, payout_book(creator_id)) == 0
        assert _balance(world, paid_book(creator_id)) == x
    assert world.chain.balance_of(w1) == world.prices.to_wei(earned[alice.id])
    assert world.chain.balance_of(w2) == world.prices.to_wei(earned[bob.id])
    assert reconcile(world.sessions, world.chain).ok


def test_a_failed_payout_rolls_back_and_the_next_cycle_pays_once(world: MoneyWorld) -> None:
    wallet, _ = world.wallet(1)
    creator = world.account("creator", wallet)
    x = world.bill(world.account("consumer"), world.persona(creator))
    first = run_due_cycle(world.sessions, world.prices, T0)
    assert first is not None
    # The payout runs out of gas on chain: a real failed transaction.
    c = world.chain
    starved = ChainRegistry(
        c._sender, c._contract, c._signer, GasLimits(settle_base=30_000, settle_per_creator=0)
    )
    OutboxDispatcher(world.sessions, starved).dispatch_pending()
    with world.sessions() as session:
        assert session.scalars(select(OutboxItem.status).where(OutboxItem.kind == "settle")).one() == "failed"
    assert follow_payouts(world.sessions, world.chain).rolled_back == first.settlements
    assert _balance(world, creator_book(creator.id)) == x and _balance(world, payout_book(creator.id)) == 0
    with world.sessions() as session:
        assert session.scalar(select(func.count()).where(UsageEvent.settlement_id.is_(None))) == 1

    second = run_due_cycle(world.sessions, world.prices, T0 + timedelta(days=7))
    assert second is not None and len(second.settlements) == 1
    world.dispatch()
    follow_payouts(world.sessions, world.chain)
    assert world.chain.balance_of(wallet) == world.prices.to_wei(x)  # paid once
    assert _balance(world, paid_book(creator.id)) == x
    assert run_due_cycle(world.sessions, world.prices, T0 + timedelta(days=14)).settlements == []  # type: ignore[union-attr]
    assert reconcile(world.sessions, world.chain).ok


def test_a_kill_between_the_chain_deposit_and_the_db_update_is_reconciled_on_restart(
    world: MoneyWorld,
) -> None:
    wallet, _ = world.wallet(3)
    creator = world.account("creator", wallet)
    x = world.bill(world.account("consumer"), world.persona(creator))
    with world.sessions.begin() as session:
        account = session.get_one(Account, creator.id)
        settlement_id = settle_creator(session, account, world.prices).id

    class Killed(BaseException):
        pass

    def die(_key: str, _tx: str) -> None:
        raise Killed  # the process dies right after the node accepted the payout

    with pytest.raises(Killed):
        OutboxDispatcher(world.sessions, world.chain, after_broadcast=die).dispatch_pending()
    assert world.chain.balance_of(wallet) == world.prices.to_wei(x)  # mined on chain…
    with world.sessions() as session:  # …while the database still says in flight
        assert session.get_one(Settlement, settlement_id).status == "pending"
        assert session.scalars(select(OutboxItem.status)).one() == OutboxStatus.SENT.value

    # Restart: the money loop runs after the outbox pass, which finds the receipt instead of paying again.
    world.dispatch()
    world.loop().tick(force=True)
    with world.sessions() as session:
        row = session.get_one(Settlement, settlement_id)
        assert row.status == "confirmed" and row.tx_hash and row.block_number
    assert world.chain.balance_of(wallet) == world.prices.to_wei(x)  # no second payout
    assert world.chain.transaction_count() == 2  # deploy + one settlement
    assert _balance(world, paid_book(creator.id)) == x
    assert reconcile(world.sessions, world.chain).ok


# --- reconciliation ----------------------------------------------------------------------------------------


def test_reconciliation_flags_a_creator_when_chain_and_ledger_disagree(
    world: MoneyWorld, caplog: pytest.LogCaptureFixture
) -> None:
    wallet, _ = world.wallet(4)
    creator = world.account("creator", wallet)
    world.bill(world.account("consumer"), world.persona(creator))
    run_due_cycle(world.sessions, world.prices, T0)
    world.dispatch()
    loop = world.loop()
    loop.tick(force=True)
    assert loop.health()["state"] == "ok"
    assert loop.last is not None and loop.last.ok

    # Someone pays this wallet on chain outside the platform's books: the chain now says more than the ledger.
    world.chain.deposit_settlement("st_rogue", "0x" + "11" * 32, {wallet: 5})
    with caplog.at_level("ERROR"):
        loop.tick(force=True)
    assert loop.last is not None and loop.last.mismatched_creators == {creator.id}
    assert metrics.RECONCILIATION_MISMATCH._value.get() == 1  # type: ignore[attr-defined]
    assert loop.health()["state"] == "degraded"
    line = next(r.getMessage() for r in caplog.records if "reconciliation mismatch" in r.getMessage())
    assert creator.id in line and "chain_credited" in line
    metrics.RECONCILIATION_MISMATCH.set(0)
