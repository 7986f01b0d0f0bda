"""Chain settings (the `_target_` of configs/chain/*.yaml) and `build_chain`, which connects and deploys.

Instantiating settings never touches a network or an EVM; `connect()` does.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
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
class TesterChainSettings:
    """An in-process py-evm chain (eth-tester) with the registry deployed by its first funded account."""

    evm_version: str = DEFAULT_EVM_VERSION
    artifact_dir: str | None = None
    explicit_gas: bool = True

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
