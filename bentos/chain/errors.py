"""The chain boundary's one error hierarchy, and the single place backend exceptions are translated into it.

eth-tester, hardhat and ganache report the same revert in different shapes (see reference/chain-notes.md);
`translate` folds them all into `ChainReverted` so callers handle a revert once.
"""

from __future__ import annotations

import re

# Revert reasons the contract uses, mapped to stable machine-readable codes for the API and the outbox.
REVERT_CODES: dict[str, str] = {
    "only platform": "not_platform",
    "only creator or platform": "not_creator_or_platform",
    "persona already registered": "persona_already_registered",
    "persona not registered": "persona_not_registered",
    "persona already revoked": "persona_already_revoked",
    "settlement already deposited": "settlement_already_deposited",
    "value does not match payouts": "settlement_value_mismatch",
    "creators and amounts differ in length": "settlement_malformed",
    "no payouts": "settlement_malformed",
    "zero amount": "settlement_malformed",
    "zero creator": "zero_creator",
    "nothing to withdraw": "nothing_to_withdraw",
    "empty persona id": "invalid_input",
    "empty embedding hash": "invalid_input",
    "empty settlement id": "invalid_input",
    "empty usage digest": "invalid_input",
}


class ChainError(Exception):
    """Base of every chain failure. `code` is stable and machine-readable; `retryable`: may a retry help."""

    code = "chain_error"
    retryable = False


class ChainConfigError(ChainError):
    """The settings cannot work: wrong chain id, no signer key, no contract at the address."""

    code = "chain_misconfigured"


class ChainInputError(ChainError, ValueError):
    """A malformed argument (hash, address, amount) rejected before anything is sent."""

    code = "invalid_input"


class ChainUnavailable(ChainError):
    """The node cannot be reached or answered with a transport/server error; safe to retry."""

    code = "chain_unavailable"
    retryable = True


class ChainTimeout(ChainUnavailable):
    """A sent transaction had no receipt before the deadline; it may still be mined (reconcile by hash)."""

    code = "chain_timeout"


class ChainNonceConflict(ChainError):
    """The node refused a nonce (too low / already known / replaced); the allocator resyncs."""

    code = "nonce_conflict"
    retryable = True


class ChainReverted(ChainError):
    """The contract rejected the call. `reason` is the revert string ("unknown" if the node gave none)."""

    def __init__(self, reason: str, *, tx_hash: str | None = None) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        self.code = REVERT_CODES.get(reason, "reverted")
        super().__init__(f"transaction reverted: {reason}" + (f" (tx {tx_hash})" if tx_hash else ""))


_REVERT_PREFIX = re.compile(
    r"^.*?(?:execution reverted|reverted with reason string|revert(?:ed)?)[:\s]*", re.IGNORECASE
)
_NONCE_MARKERS = ("nonce too low", "nonce has already been used", "already known", "replacement transaction")


_ERROR_STRING_SELECTOR = "0x08c379a0"  # Error(string), the ABI encoding of a revert reason


def _revert_reason(message: str, data: str | None = None) -> str:
    """The bare reason: decoded from the revert data when present, else cut out of the node's message."""
    if isinstance(data, str) and data.startswith(_ERROR_STRING_SELECTOR):
        from eth_abi import decode

        try:
            return str(decode(["string"], bytes.fromhex(data[len(_ERROR_STRING_SELECTOR) :]))[0])
        except Exception:
            pass  # malformed data: fall back to the message
    reason = _REVERT_PREFIX.sub("", message.strip(), count=1).strip().strip("'\"").strip()
    return reason or "unknown"


def _message_and_data(exc: BaseException) -> tuple[str, str | None]:
    """(message, revert data) out of the shapes web3 and eth-tester use."""
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        error = response["error"]
        data = error.get("data")
        if isinstance(data, dict):  # some nodes nest it: {"data": "0x…", "message": …}
            data = data.get("data")
        return str(error.get("message", "")), data if isinstance(data, str) else None
    data = getattr(exc, "data", None)
    message = getattr(exc, "message", None)
    if message is None:
        message = exc.args[0] if exc.args else ""
    return str(message), data if isinstance(data, str) else None


def translate(exc: BaseException, *, tx_hash: str | None = None) -> ChainError:
    """Map any backend exception onto the hierarchy; the result's message never includes call arguments."""
    if isinstance(exc, ChainError):
        return exc
    from eth_tester.exceptions import TransactionFailed
    from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

    message, data = _message_and_data(exc)
    if isinstance(exc, TransactionFailed | ContractLogicError):
        return ChainReverted(_revert_reason(message, data), tx_hash=tx_hash)
    if isinstance(exc, TimeExhausted):
        return ChainTimeout(f"no receipt before the deadline (tx {tx_hash})")
    if isinstance(exc, Web3RPCError):
        lowered = message.lower()
        if any(marker in lowered for marker in _NONCE_MARKERS):
            return ChainNonceConflict(message)
        if "revert" in lowered:
            return ChainReverted(_revert_reason(message, data), tx_hash=tx_hash)
        return ChainUnavailable(f"node error: {message}")
    if isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith(("requests", "urllib3")):
        return ChainUnavailable(f"node unreachable: {type(exc).__name__}")
    return ChainError(f"unexpected chain failure: {type(exc).__name__}")
