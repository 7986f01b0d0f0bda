"""Chain fixtures: the registry on eth-tester and on a hardhat node (installed into .cache/evm-node).

Every `chain` test runs on both backends; the node variant is marked `node`, skipped if npm cannot install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bentos.chain import TesterChainSettings, build_chain
from bentos.devkit.evm_node import DevNode, DevNodeError, ensure_installed, start_node
from bentos.devkit.processes import free_port
from tests.chain.chain_harness import HARDHAT_DEV_KEYS, TESTER_DEV_KEYS, ChainHarness, rpc_settings


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One compile per test session, isolated from the user's cache."""
    return str(tmp_path_factory.mktemp("chain-artifacts"))


@pytest.fixture(scope="session")
def evm_node() -> Iterator[DevNode]:
    """A hardhat node on a free 127.0.0.1 port for the session; installed on first use, stopped by PID."""
    try:
        install = ensure_installed()
        node = start_node(install, free_port())
    except DevNodeError as exc:
        pytest.skip(f"no JSON-RPC node: {exc}")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["tester", pytest.param("node", marks=pytest.mark.node)])
def chain(request: pytest.FixtureRequest, artifact_dir: str, monkeypatch: pytest.MonkeyPatch) -> ChainHarness:
    """The registry, deployed fresh for this test, on eth-tester or on the hardhat node."""
    if request.param == "tester":
        return request.getfixturevalue("tester_chain")
    node: DevNode = request.getfixturevalue("evm_node")
    monkeypatch.setenv("CHAIN_SIGNER_KEY", HARDHAT_DEV_KEYS[0])
    registry = build_chain(rpc_settings(node, artifact_dir))
    return ChainHarness("node", registry, HARDHAT_DEV_KEYS[1:])


@pytest.fixture
def tester_chain(artifact_dir: str) -> ChainHarness:
    """The registry on eth-tester only, for logic that does not depend on the backend."""
    return ChainHarness(
        "tester", build_chain(TesterChainSettings(artifact_dir=artifact_dir)), TESTER_DEV_KEYS[1:]
    )


@pytest.fixture
def node_signer_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """CHAIN_SIGNER_KEY set to the node's platform key; returns it for child processes' env."""
    monkeypatch.setenv("CHAIN_SIGNER_KEY", HARDHAT_DEV_KEYS[0])
    return os.environ["CHAIN_SIGNER_KEY"]
