"""The money loop's periodic steps, run by the platform's chain thread after each outbox pass: credit confirmed
crypto top-ups, record payouts the chain confirmed (or roll back failed ones), start a due settlement cycle,
and reconcile the ledger with the chain on a schedule. Each step is safe to run on every replica at once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bentos.billing.deposits import DepositScan, scan_deposits
from bentos.billing.pricing import PriceBook
from bentos.billing.reconciliation import Reconciliation, reconcile
from bentos.billing.settlement import CycleResult, PayoutFollowUp, follow_payouts, run_due_cycle
from bentos.chain.registry import ChainRegistry
from bentos.chain.settings import MoneyOnChain
from bentos.core import metrics

log = logging.getLogger(__name__)

CYCLE_CHECK_S = 60.0  # how often a replica looks for a due settlement cycle


@dataclass
class MoneyPass:
    deposits: DepositScan | None = None
    payouts: PayoutFollowUp | None = None
    cycle: CycleResult | None = None
    reconciliation: Reconciliation | None = None


class MoneyLoop:
    """The steps and their schedule; `tick()` runs what is due, `health()` says how the last reconciliation went."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        chain: ChainRegistry,
        prices: PriceBook,
        money: MoneyOnChain,
        *,
        cycles: bool = True,
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._prices = prices
        self._money = money
        self._cycles = cycles
        self._next_cycle_check = 0.0
        self._next_reconcile = 0.0
        self.last: Reconciliation | None = None
        self.error: str | None = None

    def tick(self, now: datetime | None = None, *, force: bool = False) -> MoneyPass:
        """One pass; `force` runs the scheduled steps (cycle check, reconciliation) regardless of their timers."""
        done = MoneyPass()
        clock = time.monotonic()
        self.error = None
        done.deposits = self._step("deposits", self.scan_deposits)
        done.payouts = self._step("payouts", self.follow_payouts)
        if self._cycles and (force or clock >= self._next_cycle_check):
            done.cycle = self._step("cycle", lambda: run_due_cycle(self._sessions, self._prices, now))
            self._next_cycle_check = clock + CYCLE_CHECK_S
        if force or clock >= self._next_reconcile:
            done.reconciliation = self._step("reconciliation", self.reconcile)
            self._next_reconcile = clock + self._money.reconcile_interval_s
        return done

    def scan_deposits(self) -> DepositScan | None:
        return scan_deposits(self._sessions, self._chain, self._prices, self._money.deposit_confirmations)

    def follow_payouts(self) -> PayoutFollowUp:
        return follow_payouts(self._sessions, self._chain)

    def reconcile(self) -> Reconciliation:
        result = reconcile(self._sessions, self._chain)
        metrics.RECONCILIATION_MISMATCH.set(len(result.mismatched_creators))
        self.last = result
        return result

    def health(self) -> dict[str, Any]:
        """/health's `money` part: degraded while the last reconciliation disagreed or a step keeps failing."""
        last = self.last
        part: dict[str, Any] = {
            "state": "ok",
            "reconciledAt": last.checked_at.isoformat() if last else None,
            "mismatchCreators": len(last.mismatched_creators) if last else 0,
        }
        if last is not None and not last.ok:
            part["state"] = "degraded"
            part["error"] = "the ledger and the chain disagree (see the reconciliation log lines)"
        elif self.error:
            part["state"] = "degraded"
            part["error"] = self.error
        return part

    def _step(self, name: str, step: Any) -> Any:
        try:
            return step()
        except Exception as exc:  # keep the loop alive; every step picks up where it stopped
            self.error = f"{name}: {type(exc).__name__}"
            log.exception("money loop: %s failed", name)
            return None
