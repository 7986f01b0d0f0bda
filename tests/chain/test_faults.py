"""Faults on a real node: a dispatcher process SIGKILLed mid-send, a transaction stuck in the mempool."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from eth_account import Account
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from bentos.chain import ChainRegistry, build_chain
from bentos.chain.outbox import Outbox, OutboxDispatcher, OutboxItem, OutboxStatus
from tests.chain.chain_harness import HARDHAT_DEV_KEYS, h, rpc_settings

if TYPE_CHECKING:
    from bentos.devkit.evm_node import DevNode

pytestmark = pytest.mark.node
WORKER = Path(__file__).with_name("outbox_worker.py")
CREATOR = Account.from_key(HARDHAT_DEV_KEYS[1]).address


def outbox_with(tmp_path: Path, *persona_ids: str) -> Engine:
    """A SQLite platform DB holding one register intent per persona id."""
    engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    OutboxItem.metadata.create_all(engine, tables=[OutboxItem.__table__])  # type: ignore[list-item]
    with Session(engine) as session, session.begin():
        for persona_id in persona_ids:
            intent = {"persona_id": persona_id, "embedding_hash": h(persona_id), "metadata_hash": h("m")}
            Outbox.enqueue(session, "register", {**intent, "creator": CREATOR}, f"register:{persona_id}")
    return engine


def row(engine: Engine, intent_key: str) -> OutboxItem:
    with Session(engine) as session:
        found = Outbox.get(session, intent_key)
        assert found is not None
        return found


@pytest.fixture
def node_registry(evm_node: DevNode, artifact_dir: str, node_signer_env: str) -> ChainRegistry:
    return build_chain(rpc_settings(evm_node, artifact_dir))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("crash_point", "state_at_crash"), [("after_record", "unknown"), ("after_broadcast", "mined")]
)
def test_a_dispatcher_killed_mid_send_is_reconciled_without_sending_twice(
    crash_point: str, state_at_crash: str, node_registry: ChainRegistry, evm_node: DevNode, tmp_path: Path
) -> None:
    engine = outbox_with(tmp_path, "p_k1", "p_k2")
    before = node_registry.transaction_count()
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(engine.url), evm_node.url, node_registry.address, crash_point],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        announced = worker.stdout.readline().split() if worker.stdout else []
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert announced[:2] == [crash_point, "register:p_k1"], "the worker died before reaching the crash point"
    in_flight = row(engine, "register:p_k1")
    assert in_flight.status == OutboxStatus.SENT and in_flight.tx_hash == announced[2]
    assert node_registry.lookup(announced[2]) == state_at_crash

    report = OutboxDispatcher(engine, node_registry).dispatch_pending()  # the restarted platform

    assert report.confirmed == ["register:p_k1", "register:p_k2"]
    assert report.resent == (["register:p_k1"] if state_at_crash == "unknown" else [])
    assert row(engine, "register:p_k1").tx_hash == announced[2]
    assert node_registry.transaction_count() == before + 2  # one transaction per intent, none twice
    assert len(node_registry.events("PersonaRegistered")) == 2


def test_a_transaction_still_in_the_mempool_is_waited_for_not_resent(
    evm_node: DevNode, artifact_dir: str, node_signer_env: str, tmp_path: Path
) -> None:
    registry = build_chain(rpc_settings(evm_node, artifact_dir, receipt_timeout_s=0.3))
    engine = outbox_with(tmp_path, "p_slow")
    provider = registry._sender.w3.provider
    provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        first = OutboxDispatcher(engine, registry).dispatch_pending()
        assert first.waiting == ["register:p_slow"] and first.confirmed == []
        tx_hash = row(engine, "register:p_slow").tx_hash
        assert tx_hash and registry.lookup(tx_hash) == "pending"

        restarted = OutboxDispatcher(engine, registry).reconcile()
        assert restarted.waiting == ["register:p_slow"] and restarted.resent == []

        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert OutboxDispatcher(engine, registry).reconcile().confirmed == ["register:p_slow"]
    finally:
        provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert row(engine, "register:p_slow").tx_hash == tx_hash
