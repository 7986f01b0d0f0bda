"""Payout wallets and crypto top-ups as a caller sees them: the signed wallet change (a one-time challenge
signed with EIP-191 `personal_sign`), deposit instructions, and the claimable on-chain balance."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.pricing import PriceBook
from bentos.chain.registry import ChainRegistry
from bentos.chain.settings import MoneyOnChain
from bentos.core.accounts import Caller, deposit_reference
from bentos.core.errors import ErrorCode, PlatformError, not_found
from bentos.core.ids import new_id
from bentos.store.models import Account
from bentos.store.money_models import WalletChallenge

CHALLENGE_TTL = timedelta(minutes=10)
RECENT_CHALLENGES = 20  # a signature is checked against the account's latest challenges only
_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
DEPOSIT_FUNCTION = "deposit(bytes32)"
WITHDRAW_FUNCTION = "withdraw()"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC


@dataclass(frozen=True)
class Challenge:
    message: str
    expires_at: datetime


def wallet_challenge(
    sessions: sessionmaker[Session], caller: Caller, now: datetime | None = None
) -> Challenge:
    """A new one-time message for the caller to sign with the wallet it wants paid to (valid CHALLENGE_TTL)."""
    now = now or _now()
    expires = now + CHALLENGE_TTL
    nonce = secrets.token_hex(16)
    message = (
        "VoxPersona: set the payout wallet of account "
        f"{caller.id}.\nThis request expires at {expires.isoformat(timespec='seconds')}.\nNonce: {nonce}"
    )
    with sessions.begin() as session:
        session.add(
            WalletChallenge(id=new_id("wch"), account_id=caller.id, message=message, expires_at=expires)
        )
    return Challenge(message, expires)


def _signer(message: str, signature: str) -> str | None:
    try:
        return str(EthAccount.recover_message(encode_defunct(text=message), signature=signature))
    except Exception:  # malformed signature bytes or a point off the curve: not a proof of anything
        return None


def change_payout_wallet(
    sessions: sessionmaker[Session], caller: Caller, wallet: str, signature: str, now: datetime | None = None
) -> Caller:
    """Set the payout wallet if `signature` is `wallet`'s signature of one of the caller's challenges that is
    unused and unexpired; the challenge is consumed. 422 invalid_signature / 410 challenge_expired otherwise."""
    now = now or _now()
    if not _WALLET.match(wallet):
        raise PlatformError(
            ErrorCode.INVALID_WALLET, "payoutWallet must be a 0x-prefixed 20-byte hex address", 422
        )
    with sessions.begin() as session:
        challenges = session.scalars(
            select(WalletChallenge)
            .where(WalletChallenge.account_id == caller.id)
            .order_by(WalletChallenge.created_at.desc())
            .limit(RECENT_CHALLENGES)
        ).all()
        signed = next(
            (c for c in challenges if (_signer(c.message, signature) or "").lower() == wallet.lower()), None
        )
        if signed is None:
            raise PlatformError(
                ErrorCode.INVALID_SIGNATURE,
                "the signature is not payoutWallet's signature of a challenge from "
                "GET /accounts/me/wallet-challenge",
                422,
            )
        if signed.used_at is not None:
            raise PlatformError(
                ErrorCode.CHALLENGE_EXPIRED, "this challenge was used already; ask for a new one", 410
            )
        if _aware(signed.expires_at) <= now:
            raise PlatformError(ErrorCode.CHALLENGE_EXPIRED, "this challenge expired; ask for a new one", 410)
        # Consumed by a conditional update: two concurrent requests with one signature change the wallet once.
        taken = session.execute(
            update(WalletChallenge)
            .where(WalletChallenge.id == signed.id, WalletChallenge.used_at.is_(None))
            .values(used_at=now)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise PlatformError(
                ErrorCode.CHALLENGE_EXPIRED, "this challenge was used already; ask for a new one", 410
            )
        account = session.get(Account, caller.id)
        if account is None:
            raise not_found(f"account {caller.id}")
        account.payout_wallet = EthAccount.recover_message(  # the checksummed form
            encode_defunct(text=signed.message), signature=signature
        )
        session.flush()
        return Caller.of(account, caller.key_id)


@dataclass(frozen=True)
class DepositInstructions:
    """How to top up with crypto: call `function` on `contract` with `reference`, sending value in wei."""

    contract: str
    chain_id: int
    reference: str
    function: str
    confirmations: int
    wei_per_micro: int
    currency: str
    dev_chain: bool
    rpc_url: str | None  # the dev chain's RPC URL (for the demo wallet), never a production node's


def deposit_instructions(
    chain: ChainRegistry, money: MoneyOnChain, prices: PriceBook, caller: Caller
) -> DepositInstructions:
    return DepositInstructions(
        contract=chain.address,
        chain_id=chain.chain_id,
        reference=caller.deposit_reference or deposit_reference(caller.id),
        function=DEPOSIT_FUNCTION,
        confirmations=money.deposit_confirmations,
        wei_per_micro=prices.wei_per_micro,
        currency=prices.currency,
        dev_chain=money.dev_chain,
        rpc_url=money.dev_rpc_url if money.dev_chain else None,
    )


@dataclass(frozen=True)
class Payouts:
    """What the caller's payout wallet can withdraw from the registry now (it calls `withdraw()` itself)."""

    payout_wallet: str | None
    claimable_wei: str  # uint256 as decimal text
    claimable: int  # the same in micro-units (whole ones)
    currency: str
    contract: str
    chain_id: int
    withdraw_function: str
    dev_chain: bool
    rpc_url: str | None


def payouts(chain: ChainRegistry, money: MoneyOnChain, prices: PriceBook, caller: Caller) -> Payouts:
    wei = chain.balance_of(caller.payout_wallet) if caller.payout_wallet else 0
    return Payouts(
        caller.payout_wallet,
        str(wei),
        prices.from_wei(wei),
        prices.currency,
        chain.address,
        chain.chain_id,
        WITHDRAW_FUNCTION,
        money.dev_chain,
        money.dev_rpc_url if money.dev_chain else None,
    )
