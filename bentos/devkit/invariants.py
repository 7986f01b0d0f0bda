"""The invariants every fault must leave intact (issue 13 §4), checked the same way after each one: no lost or
doubled usage, each request id metered once, one paid clone per provider voice, one registration per persona
and one payout per settlement on chain, and no pipeline job left queued or running.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.chain.ids import hex32, id_key
from bentos.chain.registry import ChainRegistry
from bentos.store.models import Job, Persona, Settlement, UsageEvent

UNFINISHED_JOBS = ("queued", "running")


@dataclass
class InvariantReport:
    """What the ledger, the provider and the chain say after a fault; `problems` is empty when all held."""

    seen_ok: int  # successful (billable) responses the clients saw
    usage_rows: int
    lost_usage: int
    doubled_usage: int
    clones_billed: int
    provider_voices: int | None
    registrations: int
    double_registrations: int
    double_payouts: int
    stuck_jobs: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def provider_voice_count(base_url: str, api_key: str) -> int:
    """How many voices the provider holds for `api_key` (StepFun's GET /v1/audio/voices, every page)."""
    count, after = 0, None
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10) as c:
        while True:
            params: dict[str, Any] = {"limit": 100, "order": "asc"}
            if after:
                params["after"] = after
            page = c.get("/audio/voices", params=params).raise_for_status().json()
            count += len(page["data"])
            if not page["has_more"]:
                return count
            after = page["last_id"]


def _unfinished_jobs(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(UNFINISHED_JOBS))) or 0
        )


def check_invariants(
    sessions: sessionmaker[Session],
    *,
    seen_ok: int,
    callers: Collection[str] | None = None,
    provider_voices: int | None = None,
    chain: ChainRegistry | None = None,
    job_deadline_s: float = 60.0,
) -> InvariantReport:
    """Check every invariant against the platform's DB (`sessions`).

    seen_ok: the responses with audio the clients received in full — each must be metered exactly once.
    callers: the account ids whose usage that counts (None: every account in the DB).
    provider_voices: the provider's own voice count for the platform's key (None: not checked); Σ
    voice_clones billed must equal it. chain: the registry to count registrations and payouts on.
    job_deadline_s: how long a job may still be queued or running before it counts as stuck.
    """
    problems: list[str] = []
    deadline = time.monotonic() + job_deadline_s
    while (stuck := _unfinished_jobs(sessions)) and time.monotonic() < deadline:
        time.sleep(0.1)  # poll interval under a deadline
    if stuck:
        problems.append(f"{stuck} job(s) still queued or running after {job_deadline_s:.0f} s")
    with sessions() as session:
        usage = select(UsageEvent.request_id)
        if callers is not None:
            usage = usage.where(UsageEvent.caller_id.in_(list(callers)))
        request_ids = list(session.scalars(usage))
        clones_billed = int(session.scalar(select(func.coalesce(func.sum(Persona.clones_billed), 0))) or 0)
        persona_ids = set(session.scalars(select(Persona.id)))
        settlements = list(session.scalars(select(Settlement)))
    repeated = sum(n - 1 for n in Counter(request_ids).values() if n > 1)
    if repeated:
        problems.append(f"{repeated} request id(s) metered more than once")
    lost = max(0, seen_ok - len(request_ids))
    doubled = max(0, len(request_ids) - seen_ok) + repeated
    if lost:
        problems.append(
            f"{lost} successful response(s) not metered ({len(request_ids)} rows, {seen_ok} seen)"
        )
    if len(request_ids) > seen_ok:
        problems.append(f"{len(request_ids) - seen_ok} usage row(s) for responses no client received")
    if provider_voices is not None and clones_billed != provider_voices:
        problems.append(
            f"Σ clones_billed = {clones_billed} but the provider holds {provider_voices} voice(s)"
        )
    registrations = double_registrations = double_payouts = 0
    if chain is not None:
        ours = {hex32(id_key(pid)) for pid in persona_ids}
        registered = Counter(
            str(e.args["persona_id"]).lower()
            for e in chain.events("PersonaRegistered")
            if str(e.args["persona_id"]).lower() in ours
        )
        registrations = len(registered)
        double_registrations = sum(n - 1 for n in registered.values() if n > 1)
        if double_registrations:
            problems.append(f"{double_registrations} persona(s) registered on chain more than once")
        deposited = Counter(str(e.args["settlement_id"]).lower() for e in chain.events("SettlementDeposited"))
        for settlement in settlements:
            times = deposited.get(hex32(id_key(settlement.id)), 0)
            if times > 1:
                double_payouts += times - 1
                problems.append(f"settlement {settlement.id} deposited {times} times on chain")
        owed: Counter[str] = Counter()
        for settlement in settlements:
            owed[settlement.payout_wallet] += int(settlement.wei_amount)
        for wallet, wei in owed.items():
            if chain.balance_of(wallet) > wei:
                double_payouts += 1
                problems.append(f"{wallet} holds {chain.balance_of(wallet)} wei on chain but is owed {wei}")
    return InvariantReport(
        seen_ok=seen_ok,
        usage_rows=len(request_ids),
        lost_usage=lost,
        doubled_usage=doubled,
        clones_billed=clones_billed,
        provider_voices=provider_voices,
        registrations=registrations,
        double_registrations=double_registrations,
        double_payouts=double_payouts,
        stuck_jobs=stuck,
        problems=problems,
    )
