"""The chain part: a Vyper persona registry (identity, revocation, payouts), its web3 client and outbox."""

from bentos.chain.errors import (
    ChainConfigError,
    ChainError,
    ChainInputError,
    ChainNonceConflict,
    ChainReverted,
    ChainTimeout,
    ChainUnavailable,
)
from bentos.chain.registry import (
    ChainEvent,
    ChainRegistry,
    PersonaRecord,
    SettlementRecord,
    TxResult,
    Verification,
)
from bentos.chain.settings import (
    AnvilChainSettings,
    RpcChainSettings,
    TesterChainSettings,
    build_chain,
)

__all__ = [
    "AnvilChainSettings",
    "ChainConfigError",
    "ChainError",
    "ChainEvent",
    "ChainInputError",
    "ChainNonceConflict",
    "ChainRegistry",
    "ChainReverted",
    "ChainTimeout",
    "ChainUnavailable",
    "PersonaRecord",
    "RpcChainSettings",
    "SettlementRecord",
    "TesterChainSettings",
    "TxResult",
    "Verification",
    "build_chain",
]
