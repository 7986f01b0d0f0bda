"""Chain settings (the `_target_` of configs/chain/*.yaml) and `build_chain`, which connects and deploys.

Instantiating settings never touches a network or an EVM; `connect()` does.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import RPCEndpoint, RPCResponse

from bentos.chain.artifact import DEFAULT_EVM_VERSION, load_artifact
from bentos.chain.errors import ChainConfigError, ChainError, translate
from bentos.chain.registry import ChainRegistry, GasLimits, deploy_registry
from bentos.chain.sending import SendPolicy, TxSender

log = logging.getLogger(__name__)


class ChainSettings(Protocol):
    def connect(self) -> ChainRegistry: ...


@dataclass(frozen=True)
class MoneyOnChain:
    """What the platform's money loop needs to know about a chain besides connecting to it.

    `deposit_confirmations`: blocks (the deposit's own included) before a top-up is credited; 0 credits at once.
    `dev_rpc_url`: set only for a local dev chain whose funded dev accounts a demo wallet may use.
    `explorer_url`: a block explorer's base URL (`<url>/tx/<hash>`, `<url>/address/<wallet>`); None for a chain
    no explorer indexes (the embedded tester, a local anvil).
    """

    deposit_confirmations: int
    reconcile_interval_s: float
    dev_chain: bool
    dev_rpc_url: str | None
    explorer_url: str | None = None


def money_on_chain(settings: Any) -> MoneyOnChain:
    """The money settings of any chain settings object (defaults for one that predates them)."""
    return MoneyOnChain(
        deposit_confirmations=int(getattr(settings, "deposit_confirmations", 1)),
        reconcile_interval_s=float(getattr(settings, "reconcile_interval_s", 300.0)),
        dev_chain=bool(getattr(settings, "dev_chain", False)),
        dev_rpc_url=getattr(settings, "dev_rpc_url", None),
        explorer_url=getattr(settings, "explorer_url", None) or None,
    )


@dataclass(frozen=True)
class TesterChainSettings:
    """An in-process py-evm chain (eth-tester) with the registry deployed by its first funded account."""

    evm_version: str = DEFAULT_EVM_VERSION
    artifact_dir: str | None = None
    explicit_gas: bool = True
    deposit_confirmations: int = 0
    reconcile_interval_s: float = 60.0
    dev_chain: bool = True  # in process: no RPC URL a wallet could reach
    dev_rpc_url: str | None = None
    explorer_url: str | None = None  # no explorer indexes an in-process chain

    def connect(self) -> ChainRegistry:
        from eth_tester import EthereumTester, PyEVMBackend

        tester = EthereumTester(PyEVMBackend())
        provider = _SerializedTesterProvider(tester)
        w3 = Web3(provider)
        # eth-tester's funded dev keys; index 0 is the platform, the rest are handy creators in tests.
        keys = tester.backend.account_keys
        signer: LocalAccount = Account.from_key(keys[0])
        policy = SendPolicy(explicit_gas=self.explicit_gas, poll_interval_s=0.005)
        sender = TxSender(w3, int(w3.eth.chain_id), policy)
        gas = GasLimits()
        artifact = load_artifact(self.evm_version, self.artifact_dir)
        address = deploy_registry(sender, signer, artifact, gas)
        contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)
        return ChainRegistry(sender, contract, signer, gas)


@dataclass(frozen=True)
class RpcChainSettings:
    """Any EVM JSON-RPC node. The signer key comes from the environment and is never printed (repr=False)."""

    url: str
    chain_id: int
    signer_key: str | None = field(default=None, repr=False)
    contract_address: str | None = None
    deploy_if_missing: bool = False
    confirmations: int = 1
    explicit_gas: bool = True
    max_priority_fee_wei: int = 1_000_000_000
    max_fee_wei: int | None = None
    receipt_timeout_s: float = 120.0
    poll_interval_s: float = 0.05
    request_timeout_s: float = 10.0
    evm_version: str = DEFAULT_EVM_VERSION
    artifact_dir: str | None = None
    poa: bool = False  # proof-of-authority chains put extra data in headers web3 must tolerate
    deposit_confirmations: int = 12
    reconcile_interval_s: float = 300.0
    dev_chain: bool = False
    dev_rpc_url: str | None = None
    explorer_url: str | None = None  # e.g. https://sepolia.etherscan.io: tx hashes and wallets link there

    def connect(self) -> ChainRegistry:
        if not self.signer_key:
            raise ChainConfigError("no signer key: set CHAIN_SIGNER_KEY")
        try:
            signer: LocalAccount = Account.from_key(self.signer_key)
        except Exception:
            raise ChainConfigError("the signer key is not a valid secp256k1 private key") from None
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": self.request_timeout_s}))
        if self.poa:
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        try:
            node_chain_id = int(w3.eth.chain_id)
        except Exception as exc:
            raise translate(exc) from None
        if node_chain_id != self.chain_id:
            raise ChainConfigError(f"the node is chain {node_chain_id}, configured {self.chain_id}")
        policy = SendPolicy(
            explicit_gas=self.explicit_gas,
            max_priority_fee_wei=self.max_priority_fee_wei,
            max_fee_wei=self.max_fee_wei,
            confirmations=self.confirmations,
            receipt_timeout_s=self.receipt_timeout_s,
            poll_interval_s=self.poll_interval_s,
        )
        sender = TxSender(w3, node_chain_id, policy)
        artifact = load_artifact(self.evm_version, self.artifact_dir)
        gas = GasLimits()
        address = self._contract(w3)
        if address is None:
            address = deploy_registry(sender, signer, artifact, gas)
            # The platform must persist this address (set contract_address) or every start deploys anew.
            log.warning("deployed a new persona registry at %s on chain %s", address, node_chain_id)
        contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)
        return ChainRegistry(sender, contract, signer, gas)

    def _contract(self, w3: Web3) -> str | None:
        if self.contract_address:
            address = Web3.to_checksum_address(self.contract_address)
            try:
                has_code = len(w3.eth.get_code(address)) > 0
            except Exception as exc:
                raise translate(exc) from None
            if has_code:
                return address
            if not self.deploy_if_missing:
                raise ChainConfigError(f"no contract at {address} and deploy_if_missing is off")
            return None
        if not self.deploy_if_missing:
            raise ChainConfigError("no contract_address configured and deploy_if_missing is off")
        return None


# Account #0 of the public test mnemonic ("test test … junk") that anvil and hardhat fund on every dev chain.
# Worthless outside a local dev node; only AnvilChainSettings uses it, and nothing prints it.
_DEV_CHAIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass(frozen=True)
class AnvilChainSettings:
    """The durable local dev chain `make run` starts: anvil on host:port, its state file under `state_dir`.

    Connecting is plain JSON-RPC (`RpcChainSettings`) as the dev chain's account #0. The registry is deployed
    once: its address is kept in `<state_dir>/registry.json` and reused by every later start while the node
    still has its code (a deleted state file means a fresh chain, so a fresh registry, and a warning).
    Starting the node is the orchestrator's job (`scripts/platform.py`, `bentos.devkit.anvil`), not this one.
    """

    host: str = "127.0.0.1"
    port: int = 8545
    state_dir: str = "var/chain"
    chain_id: int = 31337
    state_interval_s: int = 1  # how often anvil writes its state file (a SIGKILL loses at most this much)
    signer_key: str | None = field(default=None, repr=False)  # None: the dev chain's funded account #0
    confirmations: int = 1
    explicit_gas: bool = True
    receipt_timeout_s: float = 60.0
    poll_interval_s: float = 0.02
    request_timeout_s: float = 10.0
    evm_version: str = DEFAULT_EVM_VERSION
    artifact_dir: str | None = None
    deposit_confirmations: int = 1
    reconcile_interval_s: float = 300.0
    dev_chain: bool = True
    explorer_url: str | None = None  # no explorer indexes a local anvil

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def dev_rpc_url(self) -> str:
        """The dev node's URL, shown to the demo wallet (a local dev chain only)."""
        return self.url

    @property
    def state_file(self) -> Path:
        return Path(self.state_dir) / "anvil-state.json"

    @property
    def address_file(self) -> Path:
        return Path(self.state_dir) / "registry.json"

    def rpc(self, contract_address: str | None) -> RpcChainSettings:
        return RpcChainSettings(
            url=self.url,
            chain_id=self.chain_id,
            signer_key=self.signer_key or _DEV_CHAIN_KEY,
            contract_address=contract_address,
            deploy_if_missing=True,
            confirmations=self.confirmations,
            explicit_gas=self.explicit_gas,
            receipt_timeout_s=self.receipt_timeout_s,
            poll_interval_s=self.poll_interval_s,
            request_timeout_s=self.request_timeout_s,
            evm_version=self.evm_version,
            artifact_dir=self.artifact_dir,
        )

    def remembered(self) -> dict[str, Any]:
        """What a previous start wrote to registry.json for this chain ({} if nothing usable)."""
        try:
            info = json.loads(self.address_file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(info, dict) or info.get("chain_id") != self.chain_id:
            return {}
        return info

    def remembered_address(self) -> str | None:
        """The registry address a previous start deployed on this chain, if any."""
        address = self.remembered().get("address")
        return address if isinstance(address, str) else None

    def connect(self) -> ChainRegistry:
        state_dir = Path(self.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        source_sha = load_artifact(self.evm_version, self.artifact_dir).source_sha256
        # One deployer at a time: two processes starting together must not both deploy a registry.
        with open(state_dir / ".registry.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            info = self.remembered()
            remembered = self.remembered_address()
            outdated = remembered is not None and info.get("source_sha256") != source_sha
            if outdated:
                # The contract's code changed (e.g. it gained `deposit`): deploy the new one. The old registry
                # stays on the chain untouched: its personas and settlements are readable at the old address,
                # and creators can still withdraw what it owes them there; the new one starts empty.
                log.warning(
                    "the registry at %s was built from an older contract source: deploying the current one",
                    remembered,
                )
            registry = self.rpc(None if outdated else remembered).connect()
            if registry.address != remembered:
                if remembered is not None and not outdated:
                    log.warning(
                        "the dev chain has no registry at %s (its state file was lost?): deployed %s",
                        remembered,
                        registry.address,
                    )
                previous = [*info.get("previous", []), remembered] if outdated else info.get("previous", [])
                record = {
                    "chain_id": self.chain_id,
                    "address": registry.address,
                    "source_sha256": source_sha,
                    "previous": previous,
                }
                tmp = self.address_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(record) + "\n")
                os.replace(tmp, self.address_file)
        return registry


def build_chain(settings: ChainSettings) -> ChainRegistry:
    """Connect (and deploy where configured): the one call that turns chain settings into a registry."""
    try:
        return settings.connect()
    except ChainError:
        raise
    except Exception as exc:
        raise translate(exc) from None


class _SerializedTesterProvider(EthereumTesterProvider):
    """EthereumTesterProvider behind a lock: py-evm is not thread-safe, the platform's senders are threads."""

    def __init__(self, tester: Any) -> None:
        super().__init__(tester)
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._lock:
            return super().make_request(method, params)
