"""Signs transactions locally, sends them raw, follows them to a checked receipt — the same on every backend.

Signing locally (rather than `eth_sendTransaction`) gives the same path on eth-tester and a JSON-RPC node, and
lets the outbox record the hash and raw bytes before anything leaves the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from bentos.chain.errors import ChainNonceConflict, ChainReverted, ChainTimeout, translate
from bentos.chain.nonces import NonceAllocator

TxState = Literal["mined", "pending", "unknown"]


@dataclass(frozen=True)
class SendPolicy:
    """How transactions are priced and followed. Fees in wei; None means derived from the latest base fee."""

    explicit_gas: bool = True
    gas_headroom: float = 1.25  # multiplier on eth_estimateGas when explicit_gas is off
    max_priority_fee_wei: int = 1_000_000_000
    max_fee_wei: int | None = None
    confirmations: int = 1
    receipt_timeout_s: float = 120.0
    poll_interval_s: float = 0.05


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction as the outbox records it. `raw` is public (no key material), '0x' hex."""

    tx_hash: str
    raw: str
    nonce: int
    signer: str


@dataclass(frozen=True)
class TxRequest:
    """What to send: target, calldata, value (wei) and the explicit gas limit used when estimation is off."""

    to: str | None
    data: str
    value: int
    gas_limit: int


class TxSender:
    """One connection's sender: fee policy, per-signer nonce allocators, broadcast, receipt checks."""

    def __init__(self, w3: Web3, chain_id: int, policy: SendPolicy) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.policy = policy
        self._allocators: dict[str, NonceAllocator] = {}
        self._allocators_lock = threading.Lock()

    def allocator(self, signer: str) -> NonceAllocator:
        """The process-wide allocator of `signer` (created on first use)."""
        with self._allocators_lock:
            if signer not in self._allocators:
                self._allocators[signer] = NonceAllocator(
                    lambda: self.w3.eth.get_transaction_count(signer, "pending")  # type: ignore[arg-type]
                )
            return self._allocators[signer]

    def submit(
        self,
        signer: LocalAccount,
        request: TxRequest,
        on_signed: Callable[[SignedTx], None] | None = None,
    ) -> SignedTx:
        """Sign with the next nonce, let `on_signed` record it, then broadcast (no receipt wait)."""
        try:
            gas = request.gas_limit if self.policy.explicit_gas else self._estimate(signer.address, request)
            max_fee, priority_fee = self._fees()
        except Exception as exc:
            raise translate(exc) from None
        with self.allocator(signer.address).reserve() as nonce:
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority_fee,
                "value": request.value,
                "data": request.data,
            }
            if request.to is not None:
                tx["to"] = request.to
            signed_raw = signer.sign_transaction(tx)
            signed = SignedTx(
                tx_hash=Web3.to_hex(signed_raw.hash),
                raw=Web3.to_hex(signed_raw.raw_transaction),
                nonce=nonce,
                signer=signer.address,
            )
            if on_signed is not None:
                on_signed(signed)
            self.broadcast(signed.raw, tx_hash=signed.tx_hash)
        return signed

    def broadcast(self, raw: str, *, tx_hash: str | None = None) -> None:
        """Hand a signed raw transaction to the node; a node that already has it is not an error."""
        try:
            self.w3.eth.send_raw_transaction(raw)  # type: ignore[arg-type]
        except Exception as exc:
            error = translate(exc, tx_hash=tx_hash)
            if isinstance(error, ChainNonceConflict) and "already known" in str(error).lower():
                return
            raise error from None

    def lookup(self, tx_hash: str) -> TxState:
        """Where a transaction stands: mined (has a receipt), pending (the node has it) or unknown."""
        try:
            self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            return "mined"
        except TransactionNotFound:
            pass
        except Exception as exc:
            raise translate(exc, tx_hash=tx_hash) from None
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            return "pending"
        except TransactionNotFound:
            return "unknown"
        except Exception as exc:
            raise translate(exc, tx_hash=tx_hash) from None

    def wait(self, tx_hash: str, timeout_s: float | None = None) -> TxReceipt:
        """The receipt once mined and `confirmations` deep; raises ChainReverted if its status is 0."""
        deadline = time.monotonic() + (self.policy.receipt_timeout_s if timeout_s is None else timeout_s)
        receipt = self._poll(deadline, lambda: self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        target = receipt["blockNumber"] + self.policy.confirmations - 1
        self._poll(deadline, lambda: self.w3.eth.block_number >= target or None)
        if receipt["status"] != 1:
            raise ChainReverted(self._revert_reason(receipt), tx_hash=tx_hash)
        return receipt

    def _poll(self, deadline: float, probe: Callable[[], Any]) -> Any:
        while True:
            try:
                result = probe()
                if result:
                    return result
            except TransactionNotFound:
                pass
            except Exception as exc:
                raise translate(exc) from None
            if time.monotonic() >= deadline:
                raise ChainTimeout("no receipt (or confirmations) before the deadline")
            time.sleep(self.policy.poll_interval_s)

    def _estimate(self, sender: str, request: TxRequest) -> int:
        call: dict[str, Any] = {"from": sender, "data": request.data, "value": request.value}
        if request.to is not None:
            call["to"] = request.to
        return int(self.w3.eth.estimate_gas(call) * self.policy.gas_headroom)  # type: ignore[arg-type]

    def _fees(self) -> tuple[int, int]:
        priority = self.policy.max_priority_fee_wei
        if self.policy.max_fee_wei is not None:
            return self.policy.max_fee_wei, min(priority, self.policy.max_fee_wei)
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        # Twice the base fee survives several full blocks of base-fee growth before the tx stalls.
        return 2 * base_fee + priority, priority

    def _revert_reason(self, receipt: TxReceipt) -> str:
        """A status-0 receipt carries no reason: replay the call on the parent block's state to read it."""
        try:
            tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        except Exception:
            return "unknown"
        call: dict[str, Any] = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"]}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except Exception as exc:
            error = translate(exc)
            return error.reason if isinstance(error, ChainReverted) else "unknown"
        return "out of gas" if receipt["gasUsed"] >= tx["gas"] else "unknown"
