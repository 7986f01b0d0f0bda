"""`ChainRegistry`: the platform's one interface to the persona registry (register, revoke, settle, verify).

Persona and settlement ids are platform strings; on chain they are keccak256(utf8(id)) (`bentos.chain.ids`).
Hashes are '0x' + 64 hex strings, addresses are hex strings, money is integer wei.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from bentos.chain import ids
from bentos.chain.artifact import ContractArtifact
from bentos.chain.errors import ChainConfigError, ChainInputError, translate
from bentos.chain.sending import SignedTx, TxRequest, TxSender, TxState

IntentKind = Literal["register", "revoke", "settle", "metadata"]
INTENT_KINDS: tuple[IntentKind, ...] = ("register", "revoke", "settle", "metadata")
VerificationStatus = Literal["registered", "revoked", "mismatch", "unregistered"]
EVENT_NAMES = (
    "PersonaRegistered",
    "PersonaRevoked",
    "PersonaMetadataUpdated",
    "SettlementDeposited",
    "CreatorCredited",
    "Withdrawn",
    "Deposited",
    "Swept",
)


@dataclass(frozen=True)
class GasLimits:
    """Explicit gas limits per call, ~1.5x the measured use, so a send needs no eth_estimateGas round trip."""

    register: int = 180_000
    revoke: int = 90_000
    metadata: int = 60_000
    settle_base: int = 120_000
    settle_per_creator: int = 40_000
    withdraw: int = 120_000
    deposit: int = 80_000
    deploy: int = 2_000_000


@dataclass(frozen=True)
class PersonaRecord:
    """A persona as the contract stores it. Times are block timestamps (s); revoked_at is None while live."""

    persona_id: str
    creator: str
    embedding_hash: str
    metadata_hash: str
    registered_at: int
    revoked_at: int | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class SettlementRecord:
    """A deposited settlement: the usage digest it pays for and its total in wei."""

    settlement_id: str
    usage_digest: str
    total: int


@dataclass(frozen=True)
class Verification:
    """The provenance answer for a persona: status plus the on-chain facts it was decided from."""

    status: VerificationStatus
    persona_id: str
    expected_hash: str
    onchain_hash: str | None
    creator: str | None
    registered_at: int | None
    revoked_at: int | None
    contract: str
    chain_id: int


@dataclass(frozen=True)
class ChainEvent:
    """A decoded contract event; bytes32 args are '0x' hex strings. (tx_hash, log_index) names it uniquely."""

    name: str
    args: dict[str, Any]
    log_index: int
    tx_hash: str = ""
    block_number: int = 0


@dataclass(frozen=True)
class WalletTotals:
    """What the contract credited to one payout wallet and what the wallet withdrew, in wei."""

    credited: int = 0
    withdrawn: int = 0


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction and the registry events it emitted."""

    tx_hash: str
    block_number: int
    gas_used: int
    fee_wei: int  # gas_used x effective gas price: what the sender paid
    events: tuple[ChainEvent, ...]

    def event(self, name: str) -> ChainEvent:
        """The first event called `name` (KeyError if the transaction emitted none)."""
        for event in self.events:
            if event.name == name:
                return event
        raise KeyError(name)


def normalize_intent(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an intent and return its canonical JSON-safe payload (wei amounts as decimal strings)."""
    try:
        return _normalize(kind, payload)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ChainInputError):
            raise
        raise ChainInputError(f"malformed {kind} intent: {type(exc).__name__} {exc}") from None


def _normalize(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "register":
        ids.id_key(payload["persona_id"])
        return {
            "persona_id": payload["persona_id"],
            "embedding_hash": ids.hex32(ids.hash32(payload["embedding_hash"], name="embedding_hash")),
            "metadata_hash": ids.hex32(ids.hash32(payload["metadata_hash"], name="metadata_hash")),
            "creator": ids.address(payload["creator"], name="creator"),
        }
    if kind == "revoke":
        ids.id_key(payload["persona_id"])
        return {"persona_id": payload["persona_id"]}
    if kind == "metadata":  # a creator's edit changed the registered metadata hash
        ids.id_key(payload["persona_id"])
        metadata = ids.hex32(ids.hash32(payload["metadata_hash"], name="metadata_hash"))
        return {"persona_id": payload["persona_id"], "metadata_hash": metadata}
    if kind == "settle":
        ids.id_key(payload["settlement_id"])
        payouts = _payouts(payload["payouts"])
        return {
            "settlement_id": payload["settlement_id"],
            "usage_digest": ids.hex32(ids.hash32(payload["usage_digest"], name="usage_digest")),
            "payouts": {creator: str(amount) for creator, amount in payouts.items()},
        }
    raise ChainInputError(f"unknown intent kind {kind!r}; expected one of {INTENT_KINDS}")


def _payouts(payouts: Mapping[str, int | str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for creator, amount in payouts.items():
        wei = int(amount)
        if wei <= 0 or str(wei) != str(amount).strip():
            raise ChainInputError("payout amounts must be positive integers (wei)")
        checksummed = ids.address(creator, name="creator")
        if checksummed in result:
            raise ChainInputError("a creator appears twice in one settlement")
        result[checksummed] = wei
    if not result:
        raise ChainInputError("a settlement needs at least one payout")
    return result


class ChainRegistry:
    """The persona registry on one chain, sending as one signer (the platform, or a creator)."""

    def __init__(self, sender: TxSender, contract: Contract, signer: LocalAccount, gas: GasLimits) -> None:
        self._sender = sender
        self._contract = contract
        self._signer = signer
        self._gas = gas

    def __repr__(self) -> str:
        return f"ChainRegistry(contract={self.address}, chain={self.chain_id}, signer={self.signer_address})"

    @property
    def address(self) -> str:
        return str(self._contract.address)

    @property
    def chain_id(self) -> int:
        return self._sender.chain_id

    @property
    def signer_address(self) -> str:
        return str(self._signer.address)

    @property
    def platform_address(self) -> str:
        return str(self._call("platform"))

    def with_signer(self, private_key: str) -> ChainRegistry:
        """The same registry sending as another key (a creator revoking or withdrawing)."""
        return ChainRegistry(self._sender, self._contract, Account.from_key(private_key), self._gas)

    # --- writes ---------------------------------------------------------------------------------------------

    def register_persona(
        self, persona_id: str, embedding_hash: str, metadata_hash: str, creator: str
    ) -> TxResult:
        """Anchor a persona (platform signer only). Reverts `persona_already_registered` on a second call."""
        payload = {
            "persona_id": persona_id,
            "embedding_hash": embedding_hash,
            "metadata_hash": metadata_hash,
            "creator": creator,
        }
        return self.transact("register", payload)

    def update_metadata(self, persona_id: str, metadata_hash: str) -> TxResult:
        """Replace a live persona's metadata hash (the platform only)."""
        return self.transact("metadata", {"persona_id": persona_id, "metadata_hash": metadata_hash})

    def revoke_persona(self, persona_id: str) -> TxResult:
        """Mark a persona revoked (its creator or the platform); the record stays readable."""
        return self.transact("revoke", {"persona_id": persona_id})

    def deposit_settlement(
        self, settlement_id: str, usage_digest: str, payouts: Mapping[str, int]
    ) -> TxResult:
        """Deposit Σ payouts (wei) and credit each creator; a settlement id is accepted once."""
        return self.transact(
            "settle", {"settlement_id": settlement_id, "usage_digest": usage_digest, "payouts": payouts}
        )

    def withdraw(self) -> TxResult:
        """Pay the signer its whole credited balance (pull payment)."""
        request = TxRequest(self.address, self._contract.encode_abi("withdraw"), 0, self._gas.withdraw)
        return self.confirm(self._sender.submit(self._signer, request).tx_hash)

    def deposit(self, reference: str, value_wei: int) -> TxResult:
        """Top up the account `reference` names (bytes32, '0x' hex) with `value_wei`, sent by this signer."""
        if value_wei <= 0:
            raise ChainInputError("a deposit must send a positive value (wei)")
        data = self._contract.encode_abi("deposit", args=[ids.hash32(reference, name="reference")])
        request = TxRequest(self.address, data, value_wei, self._gas.deposit)
        return self.confirm(self._sender.submit(self._signer, request).tx_hash)

    def transact(self, kind: str, payload: Mapping[str, Any]) -> TxResult:
        """Send an intent and wait for its checked receipt."""
        return self.confirm(self.submit(kind, payload).tx_hash)

    # --- the outbox's lower-level steps ---------------------------------------------------------------------

    def submit(
        self, kind: str, payload: Mapping[str, Any], on_signed: Callable[[SignedTx], None] | None = None
    ) -> SignedTx:
        """Sign the intent with the next nonce, call `on_signed` (to record it), broadcast; no wait."""
        request = self._request(kind, normalize_intent(kind, payload))
        return self._sender.submit(self._signer, request, on_signed)

    def confirm(self, tx_hash: str, timeout_s: float | None = None) -> TxResult:
        """Wait for the receipt (and confirmations); ChainReverted if it failed."""
        receipt = self._sender.wait(tx_hash, timeout_s)
        return TxResult(
            tx_hash=tx_hash,
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            fee_wei=receipt["gasUsed"] * receipt.get("effectiveGasPrice", 0),
            events=self._decode(receipt),
        )

    def lookup(self, tx_hash: str) -> TxState:
        """'mined', 'pending' or 'unknown' to the node."""
        return self._sender.lookup(tx_hash)

    def rebroadcast(self, raw: str, tx_hash: str | None = None) -> None:
        """Send an already signed raw transaction again (same nonce, same hash)."""
        self._sender.broadcast(raw, tx_hash=tx_hash)

    def resync_nonce(self) -> None:
        """Drop the signer's cached nonce so the next send reads the node's pending count."""
        self._sender.allocator(self.signer_address).resync()

    # --- reads ----------------------------------------------------------------------------------------------

    def persona(self, persona_id: str) -> PersonaRecord | None:
        """The on-chain record, or None if never registered."""
        record = self._call("persona", ids.id_key(persona_id))
        creator, embedding, metadata, registered_at, revoked_at = record
        if registered_at == 0:
            return None
        return PersonaRecord(
            persona_id=persona_id,
            creator=str(creator),
            embedding_hash=ids.hex32(embedding),
            metadata_hash=ids.hex32(metadata),
            registered_at=int(registered_at),
            revoked_at=int(revoked_at) or None,
        )

    def is_revoked(self, persona_id: str) -> bool:
        return bool(self._call("is_revoked", ids.id_key(persona_id)))

    def balance_of(self, creator: str) -> int:
        """Wei credited to `creator` and not yet withdrawn."""
        return int(self._call("balance_of", ids.address(creator, name="creator")))

    def total_owed(self) -> int:
        """Wei the contract owes all creators together (its ether balance is never below this)."""
        return int(self._call("total_owed"))

    def total_deposited(self) -> int:
        """Wei callers ever sent as top-ups (`deposit`)."""
        return int(self._call("total_deposited"))

    def contract_balance(self) -> int:
        """Wei the contract holds: `total_owed()` plus the top-ups not swept out yet."""
        try:
            return int(self._sender.w3.eth.get_balance(self._contract.address))
        except Exception as exc:
            raise translate(exc) from None

    def account_balance(self, account: str) -> int:
        """Wei held by any address (a creator's wallet after withdrawing)."""
        try:
            return int(self._sender.w3.eth.get_balance(ids.address(account, name="account")))  # type: ignore[arg-type]
        except Exception as exc:
            raise translate(exc) from None

    def transaction_count(self, account: str | None = None) -> int:
        """Mined transactions sent by `account` (default: this signer), i.e. its next nonce on chain."""
        who = ids.address(account, name="account") if account else self.signer_address
        try:
            return int(self._sender.w3.eth.get_transaction_count(who, "latest"))  # type: ignore[arg-type]
        except Exception as exc:
            raise translate(exc) from None

    def settlement(self, settlement_id: str) -> SettlementRecord | None:
        """The deposited settlement, or None if that id was never deposited."""
        digest, total = self._call("settlement", ids.id_key(settlement_id))
        if int.from_bytes(digest, "big") == 0:
            return None
        return SettlementRecord(settlement_id=settlement_id, usage_digest=ids.hex32(digest), total=int(total))

    def verify(self, persona_id: str, embedding_hash: str) -> Verification:
        """Compare an embedding hash ('0x' + keccak256 of the canonical float32 bytes) with the chain."""
        expected = ids.hex32(ids.hash32(embedding_hash, name="embedding_hash"))
        record = self.persona(persona_id)
        status: VerificationStatus
        if record is None:
            status = "unregistered"
        elif record.revoked:
            status = "revoked"
        elif record.embedding_hash != expected:
            status = "mismatch"
        else:
            status = "registered"
        return Verification(
            status=status,
            persona_id=persona_id,
            expected_hash=expected,
            onchain_hash=record.embedding_hash if record else None,
            creator=record.creator if record else None,
            registered_at=record.registered_at if record else None,
            revoked_at=record.revoked_at if record else None,
            contract=self.address,
            chain_id=self.chain_id,
        )

    def verify_embedding(self, persona_id: str, vector: Any) -> Verification:
        """`verify` from the stored vector: float [dim], hashed as encoders.base.embedding_hash does."""
        from encoders.base import embedding_hash

        return self.verify(persona_id, embedding_hash(vector))

    def events(
        self, name: str, from_block: int = 0, to_block: int | None = None, **filters: Any
    ) -> list[ChainEvent]:
        """Past events of one kind, e.g. `events("CreatorCredited", creator=addr)`, in chain order."""
        if name not in EVENT_NAMES:
            raise ChainInputError(f"unknown event {name!r}")
        try:
            event = self._contract.events[name]()
            logs = event.get_logs(
                from_block=from_block,
                to_block=to_block if to_block is not None else "latest",
                argument_filters=filters or None,
            )
        except Exception as exc:
            raise translate(exc) from None
        return sorted((_event(log) for log in logs), key=lambda e: (e.block_number, e.log_index))

    def deposits(self, from_block: int, to_block: int) -> list[ChainEvent]:
        """`Deposited` events mined in blocks from_block..to_block (inclusive): args sender, reference, value."""
        if to_block < from_block:
            return []
        return self.events("Deposited", from_block, to_block)

    def block_number(self) -> int:
        """The latest block the node has."""
        try:
            return int(self._sender.w3.eth.block_number)
        except Exception as exc:
            raise translate(exc) from None

    def wallet_totals(self) -> dict[str, WalletTotals]:
        """Per payout wallet: Σ CreatorCredited and Σ Withdrawn over the contract's life (checksummed keys)."""
        totals: dict[str, WalletTotals] = {}
        for event in self.events("CreatorCredited"):
            wallet = str(event.args["creator"])
            was = totals.get(wallet, WalletTotals())
            totals[wallet] = WalletTotals(was.credited + int(event.args["amount"]), was.withdrawn)
        for event in self.events("Withdrawn"):
            wallet = str(event.args["creator"])
            was = totals.get(wallet, WalletTotals())
            totals[wallet] = WalletTotals(was.credited, was.withdrawn + int(event.args["amount"]))
        return totals

    # --- internals ------------------------------------------------------------------------------------------

    def _request(self, kind: str, payload: dict[str, Any]) -> TxRequest:
        encode = self._contract.encode_abi
        if kind == "register":
            data = encode(
                "register",
                args=[
                    ids.id_key(payload["persona_id"]),
                    ids.hash32(payload["embedding_hash"]),
                    ids.hash32(payload["metadata_hash"]),
                    payload["creator"],
                ],
            )
            return TxRequest(self.address, data, 0, self._gas.register)
        if kind == "revoke":
            data = encode("revoke", args=[ids.id_key(payload["persona_id"])])
            return TxRequest(self.address, data, 0, self._gas.revoke)
        if kind == "metadata":
            args = [ids.id_key(payload["persona_id"]), ids.hash32(payload["metadata_hash"])]
            return TxRequest(self.address, encode("update_metadata", args=args), 0, self._gas.metadata)
        payouts = {creator: int(amount) for creator, amount in payload["payouts"].items()}
        data = encode(
            "deposit_settlement",
            args=[
                ids.id_key(payload["settlement_id"]),
                ids.hash32(payload["usage_digest"]),
                list(payouts),
                list(payouts.values()),
            ],
        )
        gas = self._gas.settle_base + self._gas.settle_per_creator * len(payouts)
        return TxRequest(self.address, data, sum(payouts.values()), gas)

    def _call(self, function: str, *args: Any) -> Any:
        try:
            return self._contract.functions[function](*args).call()
        except Exception as exc:
            raise translate(exc) from None

    def _decode(self, receipt: TxReceipt) -> tuple[ChainEvent, ...]:
        decoded = [
            _event(log)
            for name in EVENT_NAMES
            for log in self._contract.events[name]().process_receipt(receipt, errors=DISCARD)
        ]
        return tuple(sorted(decoded, key=lambda event: event.log_index))


def _event(log: Any) -> ChainEvent:
    args = {key: ids.hex32(val) if isinstance(val, bytes) else val for key, val in log["args"].items()}
    return ChainEvent(
        name=log["event"],
        args=args,
        log_index=int(log["logIndex"]),
        tx_hash=Web3.to_hex(log["transactionHash"]),
        block_number=int(log["blockNumber"]),
    )


def deploy_registry(
    sender: TxSender, signer: LocalAccount, artifact: ContractArtifact, gas: GasLimits
) -> str:
    """Deploy a fresh registry with `signer` as its platform account; returns the checksummed address."""
    request = TxRequest(None, artifact.bytecode, 0, gas.deploy)
    receipt = sender.wait(sender.submit(signer, request).tx_hash)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainConfigError("deployment mined without a contract address")
    return Web3.to_checksum_address(address)
