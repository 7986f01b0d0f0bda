"""Shared pieces of the chain tests: dev keys, the harness around a deployed registry, rpc settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_utils import keccak
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from bentos.chain import ChainRegistry, RpcChainSettings
from bentos.devkit.evm_node import DevNode

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "chain"

# Hardhat's publicly known development keys (accounts #0-#9 of its default mnemonic): test-only, worthless.
HARDHAT_DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
]
# eth-tester funds the keys 0x…01 … 0x…0a; #1 is the platform signer TesterChainSettings uses.
TESTER_DEV_KEYS = ["0x" + f"{i:064x}" for i in range(1, 6)]


@dataclass
class ChainHarness:
    """A freshly deployed registry (platform signer) plus funded creator keys on the same chain."""

    kind: str
    registry: ChainRegistry
    creator_keys: list[str]

    def creator_address(self, index: int) -> str:
        return str(Account.from_key(self.creator_keys[index]).address)

    def as_creator(self, index: int) -> ChainRegistry:
        return self.registry.with_signer(self.creator_keys[index])


def rpc_settings(node: DevNode, artifact_dir: str, **overrides: object) -> RpcChainSettings:
    """configs/chain/rpc.yaml aimed at the test node; the key comes from CHAIN_SIGNER_KEY (as in prod)."""
    args = [f"url={node.url}", f"chain_id={node.chain_id}", f"artifact_dir={artifact_dir}"]
    args += ["deploy_if_missing=true", "poll_interval_s=0.01"]
    args += [f"{key}={value}" for key, value in overrides.items()]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        settings = instantiate(compose(config_name="rpc", overrides=args))
    assert isinstance(settings, RpcChainSettings)
    return settings


def h(label: str) -> str:
    """A '0x' + 64-hex hash of a label, standing in for an embedding / metadata / usage hash."""
    return "0x" + keccak(text=label).hex()
