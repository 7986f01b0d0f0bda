"""Billing benchmark: usage events recorded per second through the real capture path (holds.reserve +
capture_speech) with N concurrent clients; one settlement cycle over a bulk-inserted month of usage rows; and that
month's statements (pandas). SQLite and/or PostgreSQL (a throwaway schema, dropped after). Prints a table and
writes bench_results/billing.json.

    python -m scripts.bench_billing [--rows 1000000] [--clients 32] [--events 6400] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds, ledger, settlement, statements
from bentos.billing.credit import Credit, credit_in
from bentos.billing.ledger import Funding
from bentos.billing.pricing import PriceBook
from bentos.core.accounts import sign_up
from bentos.core.config import load_config
from bentos.devkit.harness import pg_schema
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Persona, UsageEvent
from scripts.bench_common import print_table, write_results

PRICES: PriceBook = instantiate(load_config([]).billing, _convert_="all")  # configs/billing/default.yaml
TARGETS = {"sqlite": 2_000, "postgresql": 5_000}  # events/s (issue 10)
SETTLEMENT_TARGET_S = 10.0
CREATORS = 500
PERSONAS_PER_CREATOR = 2
WALLET = "0x" + "ab" * 20


@dataclass
class World:
    engine: Engine
    sessions: sessionmaker[Session]
    creators: list[str]
    personas: list[Persona]


@contextlib.contextmanager
def database(kind: str, clients: int) -> Iterator[Engine]:
    """A fresh migrated database: a SQLite file in a temp folder, or a PostgreSQL schema dropped after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-billing-") as folder:
            engine = make_engine(DatabaseSettings(url=f"sqlite:///{Path(folder) / 'bench.db'}"))
            migrate(engine)
            try:
                yield engine
            finally:
                engine.dispose()
        return
    with pg_schema() as url:
        engine = make_engine(DatabaseSettings(url=url, pool_size=clients + 4))
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()


def populate(engine: Engine) -> World:
    """CREATORS creators with wallets and PERSONAS_PER_CREATOR live personas each (multipliers 1×–3×)."""
    sessions = session_factory(engine)
    creators, personas = [], []
    rng = random.Random(7)
    with sessions.begin() as session:
        for c in range(CREATORS):
            account, _ = sign_up(session, f"Creator {c}", f"creator{c}@bench.example", "creator", WALLET)
            creators.append(account.id)
            for p in range(PERSONAS_PER_CREATOR):
                multiplier = rng.choice([10_000, 15_000, 20_000, 30_000])
                persona = Persona(
                    id=f"vp_{c}_{p}",
                    creator_id=account.id,
                    name=f"Voice {c}.{p}",
                    model="step-tts-2",
                    price_multiplier_bps=multiplier,
                    price_per_10k_chars=PRICES.unit_price("step-tts-2", multiplier),
                    consent_statement="bench",
                    state="live",
                )
                session.add(persona)
                personas.append(persona)
    return World(engine, sessions, creators, personas)


# --- (a) usage events per second through reserve + capture_speech ---------------------------------------------


def bench_capture(world: World, clients: int, events: int) -> dict[str, Any]:
    with world.sessions.begin() as session:
        callers = []
        for i in range(clients):
            account, _ = sign_up(session, f"Caller {i}", f"caller{i}@bench.example", "consumer", None)
            credit_in(session, Credit(account.id, 10**12, Funding.GRANT, f"grant:bench:{i}", "bench"))
            callers.append(account.id)
    per_client = events // clients
    counter = iter(range(10**12))
    lock = threading.Lock()

    failures: list[str] = []

    def client(index: int) -> int:
        rng = random.Random(index)
        caller = callers[index]
        done = 0
        for _ in range(per_client):
            with lock:
                n = next(counter)
            persona = rng.choice(world.personas)
            charge = PRICES.charge("step-tts-2", rng.randint(10, 400), persona.price_multiplier_bps)
            try:
                hold = holds.reserve(
                    world.sessions,
                    hold_id=f"hold_b{n}",
                    account_id=caller,
                    api_key_id=None,
                    purpose=holds.Purpose.SPEECH,
                    subject=persona.id,
                    amount=charge.amount,
                )
                holds.capture_speech(
                    world.sessions,
                    hold,
                    charge,
                    request_id=f"req_b{n}",
                    caller_id=caller,
                    api_key_id=None,
                    persona=persona,
                    audio_ms=1000,
                )
            except OperationalError as err:  # SQLite's busy timeout ran out: counted, not retried
                with lock:
                    failures.append(str(err.orig))
                continue
            done += 1
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        recorded = sum(pool.map(client, range(clients)))
    seconds = time.perf_counter() - start
    with world.sessions() as session:
        rows = int(session.scalar(select(func.count(UsageEvent.id))) or 0)
        unbalanced = ledger.unbalanced_transactions(session)
    assert rows == recorded and not unbalanced, (rows, recorded, unbalanced)
    return {
        "events": recorded,
        "failed": len(failures),
        "failure": failures[0][:80] if failures else None,
        "seconds": round(seconds, 2),
        "per_s": round(recorded / seconds),
    }


# --- (b) a settlement cycle over `rows` bulk-inserted rows -------------------------------------------------------


def bulk_usage(world: World, rows: int, period: statements.Period, offset: int) -> float:
    """Insert `rows` unsettled usage rows spread over the month (callers are the creators themselves: any
    account will do for the FK) → seconds taken."""
    rng = random.Random(11)
    span = (period.end - period.start).total_seconds() - 1
    charges = {
        p.id: [PRICES.charge("step-tts-2", n, p.price_multiplier_bps) for n in (20, 80, 200, 600)]
        for p in world.personas
    }
    # Power-law popularity, as in the notebook: a few personas take most of the calls.
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(world.personas))]
    chosen = rng.choices(world.personas, weights=weights, k=rows)
    start = time.perf_counter()
    raw = world.engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = (
            "request_id, caller_id, persona_id, creator_id, chars, audio_ms, model, unit_price, amount, "
            "creator_share, platform_share, provider_cost, created_at"
        )

        def row(i: int) -> tuple[Any, ...]:
            persona = chosen[i]
            c = rng.choice(charges[persona.id])
            when = period.start + timedelta(seconds=rng.random() * span)
            return (
                f"bulk-{offset + i}",
                persona.creator_id,
                persona.id,
                persona.creator_id,
                c.chars,
                c.chars * 60,
                c.model,
                c.unit_price,
                c.amount,
                c.creator_share,
                c.platform_share,
                c.provider_cost,
                when if world.engine.dialect.name == "postgresql" else when.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )

        if world.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY usage ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for i in range(rows):
                    copy.write_row(row(i))
        else:
            marks = ", ".join("?" * 13)
            for begin in range(0, rows, 100_000):
                cursor.executemany(
                    f"INSERT INTO usage ({columns}) VALUES ({marks})",
                    [row(i) for i in range(begin, min(rows, begin + 100_000))],
                )
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def bench_settlement(world: World, rows: int, period: statements.Period) -> dict[str, Any]:
    insert_s = bulk_usage(world, rows, period, 0)
    start = time.perf_counter()
    result = settlement.run_due_cycle(world.sessions, PRICES, datetime.now(UTC))
    seconds = time.perf_counter() - start
    assert result is not None
    with world.sessions() as session:
        left = int(
            session.scalar(select(func.count(UsageEvent.id)).where(UsageEvent.settlement_id.is_(None))) or 0
        )
    return {
        "rows": rows,
        "insert_s": round(insert_s, 2),
        "function": "settlement.run_due_cycle",
        "settlements": len(result.settlements),
        "transactions": len(result.chain_settlements),
        "unsettled_after": left,
        "seconds": round(seconds, 2),
    }


# --- (c) the month's statements --------------------------------------------------------------------------------


def bench_statements(world: World, period: statements.Period, folder: Path) -> dict[str, Any]:
    timings: dict[str, Any] = {}
    start = time.perf_counter()
    with world.sessions() as session:
        usage = statements.usage_frame(session, period)
    timings["load_s"] = round(time.perf_counter() - start, 2)
    t = time.perf_counter()
    invoice = statements.invoice_lines(usage)
    earnings = statements.creator_earnings(usage)
    timings["frames_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    statements.write_parquet(invoice, folder / "invoice.parquet")
    statements.write_parquet(earnings, folder / "earnings.parquet")
    timings["parquet_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    statements.write_csv(invoice, folder / "invoice.csv")
    statements.write_csv(earnings, folder / "earnings.csv")
    timings["csv_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    report = statements.finance_report(world.sessions, period, PRICES.currency)
    timings["finance_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    one = statements.statement(world.sessions, world.personas[0].creator_id, period, creator=True)
    timings["top_creator_s"] = round(time.perf_counter() - t, 2)
    assert report.usage.calls == len(usage) and int(usage["amount"].sum()) == report.usage.amount
    return {
        "rows": len(usage),
        "earnings_lines": len(earnings),
        "top_creator_rows": one.earned.calls if one.earned else 0,
        **timings,
        "seconds": round(time.perf_counter() - start, 2),
        "csv_mb": round((folder / "invoice.csv").stat().st_size / 2**20, 1),
        "parquet_mb": round((folder / "invoice.parquet").stat().st_size / 2**20, 1),
    }


def last_month(now: datetime | None = None) -> statements.Period:
    first = (now or datetime.now(UTC)).replace(day=1)
    return statements.Period.parse((first - timedelta(days=1)).strftime("%Y-%m"))


def run(kind: str, rows: int, clients: int, events: int) -> dict[str, Any]:
    print(f"\n== {kind}: populating", flush=True)
    with database(kind, clients) as engine:
        world = populate(engine)
        print(f"== {kind}: (a) {events} events, {clients} clients", flush=True)
        capture = bench_capture(world, clients, events)
        print(f"   {capture}", flush=True)
        period = last_month()
        print(f"== {kind}: (b) settlement over {rows:,} rows", flush=True)
        settle = bench_settlement(world, rows, period)
        print(f"   {settle}", flush=True)
        print(f"== {kind}: (c) statements for {period.name}", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-statements-") as folder:
            month = bench_statements(world, period, Path(folder))
        print(f"   {month}", flush=True)
    return {"capture": capture, "settlement": settle, "statements": month}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage rows settled and reported")
    parser.add_argument("--clients", type=int, default=32, help="concurrent capture clients")
    parser.add_argument("--events", type=int, default=6_400, help="usage events captured in (a)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = {kind: run(kind, args.rows, args.clients, args.events) for kind in kinds}
    table = []
    for kind, r in results.items():
        dialect = "postgresql" if kind == "postgres" else kind
        table += [
            {
                "db": kind,
                "measure": f"usage events/s, {args.clients} clients (reserve+capture)",
                "result": f"{r['capture']['per_s']:,}/s ({r['capture']['events']:,} in "
                f"{r['capture']['seconds']} s, {r['capture']['failed']} failed)",
                "target": f"≥ {TARGETS[dialect]:,}/s",
            },
            {
                "db": kind,
                "measure": f"settlement cycle over {r['settlement']['rows']:,} rows",
                "result": f"{r['settlement']['seconds']} s ({r['settlement']['settlements']} settlements)",
                "target": f"≤ {SETTLEMENT_TARGET_S:g} s",
            },
            {
                "db": kind,
                "measure": f"month's statements, {r['statements']['rows']:,} rows",
                "result": f"{r['statements']['seconds']} s (load {r['statements']['load_s']} s)",
                "target": "—",
            },
        ]
    print_table("Billing benchmark", table)
    write_results("billing", {"args": vars(args), "results": results, "table": table})


if __name__ == "__main__":
    main()
