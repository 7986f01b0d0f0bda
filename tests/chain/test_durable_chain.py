"""The durable dev chain (`chain=anvil`, make run's default): registrations and balances survive a restart of the
node, whether it was stopped (SIGTERM) or killed (SIGKILL after its state interval), and the registry deployed
once is reused. Needs npm (anvil is installed from it into .cache/anvil); skipped without it, like the other
`node` tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from bentos.chain import AnvilChainSettings, ChainRegistry, build_chain
from bentos.devkit.anvil import AnvilNode, ensure_anvil, start_anvil
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.evm_node import DevNodeError
from bentos.devkit.harness import platform_overrides, start_platform, wait_for
from bentos.devkit.processes import free_port
from encoders.voices import VoiceSet
from tests.chain.chain_harness import HARDHAT_DEV_KEYS, h

pytestmark = [pytest.mark.node, pytest.mark.slow]  # npm + restarts: ~35 s, run by CI's slow pass

CREATOR = str(Account.from_key(HARDHAT_DEV_KEYS[1]).address)
OWED = 1_234_567


@pytest.fixture(scope="session")
def anvil_binary() -> Path:
    try:
        return ensure_anvil()
    except DevNodeError as exc:
        pytest.skip(f"no anvil: {exc}")


@pytest.fixture
def settings(tmp_path: Path, artifact_dir: str) -> AnvilChainSettings:
    return AnvilChainSettings(port=free_port(), state_dir=str(tmp_path / "chain"), artifact_dir=artifact_dir)


@pytest.fixture
def nodes() -> Iterator[list[AnvilNode]]:
    """Every node a test starts; whatever is still running at the end is stopped."""
    started: list[AnvilNode] = []
    yield started
    for node in started:
        node.stop()


def start(binary: Path, settings: AnvilChainSettings, nodes: list[AnvilNode]) -> AnvilNode:
    node = start_anvil(binary, settings.port, settings.state_file, state_interval_s=settings.state_interval_s)
    nodes.append(node)
    return node


def register_and_settle(registry: ChainRegistry) -> int:
    """A persona registered and a settlement crediting CREATOR; returns the last transaction's block."""
    registry.register_persona("p_durable", h("emb"), h("meta"), CREATOR)
    return registry.deposit_settlement("s_durable", h("usage"), {CREATOR: OWED}).block_number


def assert_survived(registry: ChainRegistry, address: str) -> None:
    assert registry.address == address  # the remembered registry, not a fresh deployment
    assert registry.verify("p_durable", h("emb")).status == "registered"
    assert registry.balance_of(CREATOR) == OWED
    assert registry.total_owed() == OWED
    settlement = registry.settlement("s_durable")
    assert settlement is not None and settlement.total == OWED


def saved_block(state_file: Path) -> int:
    """The newest block anvil has written to its state file (-1 while there is none or it is mid-write)."""
    try:
        return int(json.loads(state_file.read_text())["best_block_number"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def test_a_stopped_node_restarts_with_its_registry_and_balances(
    anvil_binary: Path, settings: AnvilChainSettings, nodes: list[AnvilNode]
) -> None:
    node = start(anvil_binary, settings, nodes)
    registry = build_chain(settings)
    assert settings.remembered_address() == registry.address
    register_and_settle(registry)
    node.stop()  # SIGTERM: anvil writes its state on the way out
    assert saved_block(settings.state_file) >= 0

    start(anvil_binary, settings, nodes)
    assert_survived(build_chain(settings), registry.address)


def test_a_killed_node_restarts_with_what_it_saved(
    anvil_binary: Path, settings: AnvilChainSettings, nodes: list[AnvilNode]
) -> None:
    node = start(anvil_binary, settings, nodes)
    registry = build_chain(settings)
    last_block = register_and_settle(registry)
    wait_for(
        lambda: saved_block(settings.state_file) >= last_block,
        timeout=10 * settings.state_interval_s,
        what="anvil to save the settlement's block",
    )
    node.kill()

    start(anvil_binary, settings, nodes)
    restarted = build_chain(settings)
    assert_survived(restarted, registry.address)
    # The platform signer's nonce carries on from the saved chain: a new send is accepted.
    restarted.register_persona("p_after", h("emb2"), h("meta"), CREATOR)
    assert restarted.verify("p_after", h("emb2")).status == "registered"


def test_a_lost_state_file_gets_a_fresh_registry_and_a_new_remembered_address(
    anvil_binary: Path, settings: AnvilChainSettings, nodes: list[AnvilNode]
) -> None:
    node = start(anvil_binary, settings, nodes)
    build_chain(settings).register_persona("p_gone", h("emb"), h("meta"), CREATOR)
    node.stop()
    settings.state_file.unlink()
    settings.address_file.write_text(json.dumps({"chain_id": 31337, "address": "0x" + "11" * 20}))

    start(anvil_binary, settings, nodes)
    fresh = build_chain(settings)
    assert settings.remembered_address() == fresh.address != "0x" + "11" * 20
    assert fresh.verify("p_gone", h("emb")).status == "unregistered"


def test_a_persona_registered_through_the_platform_stays_registered_across_restarts(
    anvil_binary: Path,
    settings: AnvilChainSettings,
    nodes: list[AnvilNode],
    emulator: EmulatorProcess,
    voice_set: VoiceSet,
    tmp_path: Path,
) -> None:
    from tests.service.test_end_to_end import WALLET, create_live_persona

    overrides = [
        *platform_overrides(tmp_path / "data", emulator),
        "chain=anvil",
        f"chain.port={settings.port}",
        f"chain.state_dir={settings.state_dir}",
        f"chain.artifact_dir={settings.artifact_dir}",
    ]
    node = start(anvil_binary, settings, nodes)
    running = start_platform(overrides)
    try:
        _, key = running.sign_up("creator", WALLET)
        voice_id = create_live_persona(running, key, voice_set.clips[0].mp3_path.read_bytes())["id"]
        wait_for(lambda: provenance(running, key, voice_id) == "registered", timeout=60, what="registration")
    finally:
        running.stop()
    node.stop()

    start(anvil_binary, settings, nodes)
    running = start_platform(overrides)
    try:
        assert provenance(running, key, voice_id) == "registered"
    finally:
        running.stop()


def provenance(running: Any, key: str, voice_id: str) -> str:
    return str(running.client(key).get(f"/voices/{voice_id}/provenance").json()["status"])
