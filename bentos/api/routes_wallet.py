"""Money on chain for a caller: crypto top-up instructions and top-ups received, the signed payout-wallet
change, and what the payout wallet can withdraw from the registry."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.schemas import _Body
from bentos.api.views import AccountView, IsoTime, View, error_responses
from bentos.billing.deposits import deposits_of
from bentos.chain.settings import money_on_chain
from bentos.core import wallets

router = APIRouter(tags=["money"])


class WalletChange(_Body):
    payout_wallet: str = Field(alias="payoutWallet", max_length=42, description="0x + 40 hex digits")
    signature: str = Field(
        max_length=200,
        description="EIP-191 personal_sign of the `message` from GET /accounts/me/wallet-challenge, by payoutWallet",
    )


class WalletChallengeView(View):
    message: str = Field(description="sign exactly this text with the new payout wallet (personal_sign)")
    expires_at: IsoTime


class DepositInstructionsView(View):
    contract: str
    chain_id: int
    reference: str = Field(description="bytes32 naming your account: pass it to deposit(bytes32)")
    function: str
    confirmations: int = Field(description="blocks (the deposit's own included) before it is credited")
    wei_per_micro: int = Field(description="wei credited as one micro-unit; a remainder under one is not")
    currency: str
    dev_chain: bool = Field(description="a local dev chain whose funded dev accounts a demo wallet may use")
    rpc_url: str | None = Field(description="the dev chain's JSON-RPC URL; null on any other chain")


class DepositView(View):
    tx_hash: str
    log_index: int
    block_number: int
    sender: str
    value_wei: str
    amount: int
    status: str
    created_at: IsoTime


class DepositList(View):
    data: list[DepositView]


class PayoutsView(View):
    payout_wallet: str | None
    claimable_wei: str = Field(description="what the payout wallet can withdraw now (uint256 as text)")
    claimable: int = Field(description="the same in whole micro-units")
    currency: str
    contract: str
    chain_id: int
    withdraw_function: str = Field(description="the payout wallet calls this on `contract` itself")
    dev_chain: bool
    rpc_url: str | None


@router.get("/accounts/me/wallet-challenge", responses=error_responses(401))
def wallet_challenge(platform: PlatformDep, account: CallerDep) -> WalletChallengeView:
    """A one-time message (valid 10 minutes) to sign with the wallet that should receive payouts."""
    challenge = wallets.wallet_challenge(platform.sessions, account)
    return WalletChallengeView(message=challenge.message, expires_at=_iso(challenge.expires_at))


@router.patch("/accounts/me", responses=error_responses(400, 401, 410, 422))
def change_wallet(body: WalletChange, platform: PlatformDep, account: CallerDep) -> AccountView:
    """Change the payout wallet with proof of ownership: `signature` is payoutWallet's personal_sign of an unused,
    unexpired challenge (422 `invalid_signature`, 410 `challenge_expired`); the challenge is consumed."""
    changed = wallets.change_payout_wallet(platform.sessions, account, body.payout_wallet, body.signature)
    return AccountView.of(changed)


@router.post("/topups/crypto", responses=error_responses(401, 503))
def crypto_topup(platform: PlatformDep, account: CallerDep) -> DepositInstructionsView:
    """How to top up on chain: send value to `contract`'s deposit(reference); it is credited once after
    `confirmations` blocks, at `weiPerMicro` wei per micro-unit. The same answer every time (safe to retry)."""
    instructions = wallets.deposit_instructions(
        platform.chain, money_on_chain(platform.chain_settings), platform.prices, account
    )
    return DepositInstructionsView.of(instructions)


@router.get("/topups/crypto", responses=error_responses(401))
def crypto_topups(platform: PlatformDep, account: CallerDep) -> DepositList:
    """The caller's crypto top-ups credited so far, newest first."""
    return DepositList(data=[DepositView.of(d) for d in deposits_of(platform.sessions, account.id)])


@router.get("/accounts/me/payouts", responses=error_responses(401, 503))
def payouts(platform: PlatformDep, account: CallerDep) -> PayoutsView:
    """What the caller's payout wallet can withdraw from the registry now (it calls withdraw() itself)."""
    return PayoutsView.of(
        wallets.payouts(platform.chain, money_on_chain(platform.chain_settings), platform.prices, account)
    )


def _iso(at: datetime) -> str:
    return at.isoformat()
