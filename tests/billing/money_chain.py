"""A real EVM (py-evm) and a real SQLite database for the money-on-chain tests, and helpers that bill calls the
way the platform does (reserve, then capture)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account as EthAccount
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import Funding
from bentos.billing.pricing import PriceBook
from bentos.chain import TesterChainSettings, build_chain
from bentos.chain.outbox import OutboxDispatcher
from bentos.chain.registry import ChainRegistry
from bentos.chain.settings import MoneyOnChain
from bentos.core.accounts import Caller, sign_up
from bentos.core.ids import new_id
from bentos.core.money_loop import MoneyLoop
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Persona
from tests.chain.chain_harness import TESTER_DEV_KEYS

PRICES = PriceBook(
    list_price_per_10k={"step-tts-2": 5_600_000},
    provider_cost_per_10k={"step-tts-2": 2_800_000},
    wei_per_micro=1_000_000_000,
    minimum_payout=1,
    settlement_period_days=7,
    multiplier_bps_min=7000,
)
_n = itertools.count()


@dataclass
class MoneyWorld:
    sessions: sessionmaker[Session]
    chain: ChainRegistry
    prices: PriceBook = PRICES

    def account(self, role: str = "creator", wallet: str | None = None) -> Caller:
        n = next(_n)
        with self.sessions.begin() as session:
            account, _ = sign_up(session, f"Someone {n}", f"m{n}@example.com", role, wallet)
            return Caller.of(account)

    def persona(self, creator: Caller) -> Persona:
        with self.sessions.begin() as session:
            persona = Persona(
                id=new_id("p"),
                creator_id=creator.id,
                name="P",
                consent_statement="mine",
                model="step-tts-2",
                price_per_10k_chars=5_600_000,
                state="live",
            )
            session.add(persona)
        return persona

    def bill(self, caller: Caller, persona: Persona, chars: int = 1000) -> int:
        """One metered call as the platform bills it; returns the creator's share."""
        charge = self.prices.charge("step-tts-2", chars, 10_000)
        with self.sessions.begin() as session:
            credit_in(session, Credit(caller.id, charge.amount, Funding.GRANT, new_id("g")))
        hold = holds.reserve(
            self.sessions,
            hold_id=new_id("hold"),
            account_id=caller.id,
            api_key_id=None,
            purpose=holds.Purpose.SPEECH,
            subject=new_id("req"),
            amount=charge.amount,
        )
        holds.capture_speech(
            self.sessions,
            hold,
            charge,
            request_id=new_id("req"),
            caller_id=caller.id,
            api_key_id=None,
            persona=persona,
            audio_ms=1000,
        )
        return charge.creator_share

    def loop(self, confirmations: int = 0) -> MoneyLoop:
        return MoneyLoop(self.sessions, self.chain, self.prices, MoneyOnChain(confirmations, 0, True, None))

    def dispatch(self) -> None:
        OutboxDispatcher(self.sessions, self.chain).dispatch_pending()

    def wallet(self, index: int) -> tuple[str, str]:
        """(address, key) of one of eth-tester's funded dev accounts (0 is the platform)."""
        key = TESTER_DEV_KEYS[index]
        return str(EthAccount.from_key(key).address), key


def make_world(tmp_path: Path, artifact_dir: str) -> MoneyWorld:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/money.db"))
    migrate(engine)
    chain = build_chain(TesterChainSettings(artifact_dir=artifact_dir))
    return MoneyWorld(session_factory(engine), chain)
