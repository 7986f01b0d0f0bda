"""Nonce allocation: concurrent senders never collide, and a failed send does not leave a gap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_utils import keccak

from bentos.chain.nonces import NonceAllocator
from tests.chain.chain_harness import ChainHarness

SENDERS = 8
PER_SENDER = 5


def test_eight_concurrent_senders_each_mine_exactly_once(chain: ChainHarness) -> None:
    registry = chain.registry
    before = registry.transaction_count()
    embedding = "0x" + keccak(text="emb").hex()
    persona_ids = [f"p_conc_{sender}_{i}" for sender in range(SENDERS) for i in range(PER_SENDER)]

    def register(persona_id: str) -> str:
        return registry.register_persona(persona_id, embedding, embedding, chain.creator_address(0)).tx_hash

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        tx_hashes = list(pool.map(register, persona_ids))  # any "nonce too low" would raise here

    assert len(set(tx_hashes)) == len(persona_ids)
    assert registry.transaction_count() == before + len(persona_ids)  # no extra, no missing transaction
    assert all(registry.persona(persona_id) is not None for persona_id in persona_ids)


def test_a_failed_send_makes_the_allocator_ask_the_node_again() -> None:
    node_counts = iter([7, 7])
    allocator = NonceAllocator(lambda: next(node_counts))
    with allocator.reserve() as nonce:
        assert nonce == 7
    with pytest.raises(ConnectionError), allocator.reserve() as nonce:
        assert nonce == 8
        raise ConnectionError("node went away before the transaction reached it")
    with allocator.reserve() as nonce:
        assert nonce == 7  # re-read from the node, not 9: no gap that would stall later transactions
