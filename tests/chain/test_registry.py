"""The persona registry's behaviour, identical on eth-tester and on a hardhat node."""

from __future__ import annotations

import dataclasses

import pytest
from eth_utils import keccak

from bentos.chain import ChainInputError, ChainReverted, RpcChainSettings
from tests.chain.chain_harness import ChainHarness, h


def register(chain: ChainHarness, persona_id: str, creator: int = 0, embedding: str = "emb") -> None:
    chain.registry.register_persona(persona_id, h(embedding), h("meta"), chain.creator_address(creator))


def test_registration_stores_the_record_and_emits_an_event(chain: ChainHarness) -> None:
    creator = chain.creator_address(0)
    result = chain.registry.register_persona("p_alice", h("emb"), h("meta"), creator)

    event = result.event("PersonaRegistered")
    assert event.args == {
        "persona_id": "0x" + keccak(text="p_alice").hex(),
        "creator": creator,
        "embedding_hash": h("emb"),
        "metadata_hash": h("meta"),
    }
    record = chain.registry.persona("p_alice")
    assert record is not None
    assert (record.creator, record.embedding_hash, record.metadata_hash) == (creator, h("emb"), h("meta"))
    assert record.registered_at > 0 and not record.revoked
    assert chain.registry.persona("p_nobody") is None


def test_a_persona_is_registered_at_most_once(chain: ChainHarness) -> None:
    register(chain, "p_once")
    with pytest.raises(ChainReverted) as caught:
        chain.registry.register_persona("p_once", h("other"), h("meta"), chain.creator_address(1))
    assert caught.value.reason == "persona already registered"
    assert caught.value.code == "persona_already_registered"
    record = chain.registry.persona("p_once")
    assert record is not None and record.embedding_hash == h("emb")  # the first record is untouched


def test_only_the_platform_signer_registers(chain: ChainHarness) -> None:
    with pytest.raises(ChainReverted) as caught:
        chain.as_creator(0).register_persona("p_self", h("emb"), h("meta"), chain.creator_address(0))
    assert caught.value.code == "not_platform"
    assert chain.registry.persona("p_self") is None


def test_the_creator_revokes_and_the_record_stays_readable(chain: ChainHarness) -> None:
    register(chain, "p_rev", creator=0)
    result = chain.as_creator(0).revoke_persona("p_rev")

    assert result.event("PersonaRevoked").args["revoked_by"] == chain.creator_address(0)
    record = chain.registry.persona("p_rev")
    assert record is not None and record.revoked and record.embedding_hash == h("emb")
    assert chain.registry.is_revoked("p_rev")


def test_revocation_rules(chain: ChainHarness) -> None:
    register(chain, "p_rules", creator=0)
    with pytest.raises(ChainReverted) as stranger:
        chain.as_creator(1).revoke_persona("p_rules")
    assert stranger.value.code == "not_creator_or_platform"
    assert not chain.registry.is_revoked("p_rules")

    chain.registry.revoke_persona("p_rules")  # the platform may revoke (e.g. takedown)
    with pytest.raises(ChainReverted) as twice:
        chain.as_creator(0).revoke_persona("p_rules")
    assert twice.value.code == "persona_already_revoked"
    with pytest.raises(ChainReverted) as unknown:
        chain.registry.revoke_persona("p_never")
    assert unknown.value.code == "persona_not_registered"


def test_multi_creator_settlement_pays_each_creator_exactly(chain: ChainHarness) -> None:
    alice, bob = chain.creator_address(0), chain.creator_address(1)
    payouts = {alice: 7 * 10**15, bob: 3 * 10**15 + 1}
    deposit = chain.registry.deposit_settlement("st_1", h("usage-1"), payouts)

    credited = {e.args["creator"]: e.args["amount"] for e in deposit.events if e.name == "CreatorCredited"}
    assert credited == payouts
    summary = deposit.event("SettlementDeposited").args
    assert summary["total"] == sum(payouts.values()) and summary["creator_count"] == 2
    settlement = chain.registry.settlement("st_1")
    assert settlement is not None and settlement.total == sum(payouts.values())
    assert settlement.usage_digest == h("usage-1")
    assert chain.registry.balance_of(alice) == payouts[alice]
    assert chain.registry.balance_of(bob) == payouts[bob]
    assert chain.registry.contract_balance() == chain.registry.total_owed() == sum(payouts.values())

    wallet_before = chain.registry.account_balance(alice)
    withdrawal = chain.as_creator(0).withdraw()
    assert withdrawal.event("Withdrawn").args == {"creator": alice, "amount": payouts[alice]}
    assert chain.registry.account_balance(alice) == wallet_before + payouts[alice] - withdrawal.fee_wei
    assert chain.registry.balance_of(alice) == 0
    # Bob's credit is untouched by Alice's withdrawal; the contract still holds exactly what it owes him.
    assert chain.registry.contract_balance() == chain.registry.total_owed() == payouts[bob]
    with pytest.raises(ChainReverted) as empty:
        chain.as_creator(0).withdraw()
    assert empty.value.code == "nothing_to_withdraw"


def test_a_settlement_id_is_accepted_once(chain: ChainHarness) -> None:
    alice = chain.creator_address(0)
    chain.registry.deposit_settlement("st_dup", h("usage"), {alice: 1000})
    with pytest.raises(ChainReverted) as caught:
        chain.registry.deposit_settlement("st_dup", h("usage-2"), {alice: 5})
    assert caught.value.code == "settlement_already_deposited"
    assert chain.registry.balance_of(alice) == 1000
    assert chain.registry.contract_balance() == 1000


def test_a_deposit_must_carry_exactly_the_payouts(chain: ChainHarness) -> None:
    registry = chain.registry
    payouts = {chain.creator_address(0): "1000"}
    payload = {"settlement_id": "st_short", "usage_digest": h("u"), "payouts": payouts}
    underpaid = dataclasses.replace(registry._request("settle", payload), value=999)
    with pytest.raises(ChainReverted) as caught:
        registry.confirm(registry._sender.submit(registry._signer, underpaid).tx_hash)
    assert caught.value.code == "settlement_value_mismatch"
    assert registry.settlement("st_short") is None and registry.contract_balance() == 0


def test_verify_answers_each_status(chain: ChainHarness) -> None:
    register(chain, "p_v", embedding="emb-v")
    registered = chain.registry.verify("p_v", h("emb-v"))
    assert registered.status == "registered" and registered.creator == chain.creator_address(0)
    assert registered.contract == chain.registry.address and registered.chain_id == chain.registry.chain_id

    assert chain.registry.verify("p_v", h("tampered")).status == "mismatch"
    assert chain.registry.verify("p_missing", h("emb-v")).status == "unregistered"
    chain.registry.revoke_persona("p_v")
    assert chain.registry.verify("p_v", h("emb-v")).status == "revoked"


def test_verify_recomputes_the_hash_from_the_stored_vector(tester_chain: ChainHarness) -> None:
    import numpy as np

    from encoders.base import embedding_hash

    vector = np.linspace(-1.0, 1.0, 256, dtype=np.float32)
    registry = tester_chain.registry
    registry.register_persona("p_vec", embedding_hash(vector), h("meta"), tester_chain.creator_address(0))

    assert registry.verify_embedding("p_vec", vector).status == "registered"
    assert registry.verify_embedding("p_vec", vector * 0.5).status == "mismatch"


def test_past_events_can_be_queried_by_creator(chain: ChainHarness) -> None:
    alice, bob = chain.creator_address(0), chain.creator_address(1)
    chain.registry.deposit_settlement("st_a", h("a"), {alice: 10, bob: 20})
    chain.registry.deposit_settlement("st_b", h("b"), {alice: 30})

    credits = chain.registry.events("CreatorCredited", creator=alice)
    assert [e.args["amount"] for e in credits] == [10, 30]
    expected_ids = ["0x" + keccak(text=s).hex() for s in ("st_a", "st_b")]
    assert [e.args["settlement_id"] for e in credits] == expected_ids


def test_malformed_arguments_are_refused_before_sending(chain: ChainHarness) -> None:
    registry, creator = chain.registry, chain.creator_address(0)
    nonce_before = registry.transaction_count()
    bad_calls = [
        lambda: registry.register_persona("p_x", "0x1234", h("m"), creator),
        lambda: registry.register_persona("p_x", h("e"), h("m"), "0x" + "00" * 20),
        lambda: registry.register_persona("", h("e"), h("m"), creator),
        lambda: registry.deposit_settlement("st_x", h("u"), {creator: 0}),
        lambda: registry.deposit_settlement("st_x", h("u"), {creator: -5}),
        lambda: registry.deposit_settlement("st_x", h("u"), {}),
        lambda: registry.deposit_settlement("st_x", h("u"), {creator: 1.5}),  # type: ignore[dict-item]
    ]
    for call in bad_calls:
        with pytest.raises(ChainInputError):
            call()
    assert registry.transaction_count() == nonce_before


def test_the_signer_key_never_appears_in_reprs(chain: ChainHarness) -> None:
    secret = chain.creator_keys[0]
    settings = RpcChainSettings(url="http://127.0.0.1:1", chain_id=1, signer_key=secret)
    creator_registry = chain.as_creator(0)
    for text in (repr(settings), str(settings), repr(creator_registry)):
        assert secret[2:] not in text.lower()
