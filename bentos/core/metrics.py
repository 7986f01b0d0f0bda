"""The platform's Prometheus metrics (also exported on BentoML's /metrics when served by BentoML).

Counted as things happen (this module): HTTP requests and latency by route template, speech calls, usage events,
pipeline step durations, the reconciliation mismatch. The StepFun boundary counts its own (it may not import the
core): `stepfun_requests{endpoint,outcome}`, `stepfun_request_seconds{endpoint}` (client.py),
`stepfun_limiter_wait_seconds`, `stepfun_limiter_refusals` (limiter.py), `stepfun_config_errors`,
`stepfun_retries`, `stepfun_breaker_openings` (health.py).

Read from the database when scraped (`PlatformCollector`, one per platform): unfinished jobs and the oldest one's
age, the chain outbox backlog and its oldest intent's age, whether the provider's circuit breaker is open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pybreaker
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.logs import bound
from bentos.store.models import Job, OutboxItem

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUESTS = Counter("voxpersona_http_requests", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("voxpersona_http_request_seconds", "HTTP request latency", ["method", "route"])
PROVIDER_CALLS = Counter("voxpersona_provider_calls", "StepFun speech calls by outcome", ["outcome"])
PROVIDER_LATENCY = Histogram("voxpersona_provider_first_byte_seconds", "StepFun time to first audio byte")
QUEUE_DEPTH = Gauge("voxpersona_queue_depth", "Pipeline jobs queued or scheduled")
USAGE_EVENTS = Counter("voxpersona_usage_events", "Metered speech requests")
PIPELINE_STEP_SECONDS = Histogram(
    "voxpersona_pipeline_step_seconds",
    "Time one pipeline step took (validate, embed, register, clone, preview, go_live), by outcome",
    ["step", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
RECONCILIATION_MISMATCH = Gauge(
    "voxpersona_reconciliation_mismatch_creators",
    "Creators whose ledger and on-chain payouts disagree at the last reconciliation (0: all agree)",
    multiprocess_mode="livemax",
)

UNFINISHED_JOBS = ("queued", "running")
UNFINISHED_INTENTS = ("pending", "sent")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def timed_step(step: Callable[[str], T], persona_id: str, job_id: str | None = None) -> T:
    """Run one pipeline step: its duration observed by step and outcome, its log lines carrying the persona,
    the job and the step."""
    name = getattr(step, "__name__", "step").lstrip("_")
    started, outcome = time.perf_counter(), "error"
    with bound(persona_id=persona_id, job_id=job_id, step=name):
        try:
            result = step(persona_id)
            outcome = "ok"
            return result
        finally:
            seconds = time.perf_counter() - started
            PIPELINE_STEP_SECONDS.labels(name, outcome).observe(seconds)
            log.info("pipeline step", extra={"outcome": outcome, "duration_ms": round(seconds * 1000, 1)})


def _age_s(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands timezone-aware columns back naive (stored as UTC)
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


class PlatformCollector(Collector):
    """Gauges computed at scrape time from the jobs and chain_outbox tables and the provider's breaker."""

    def __init__(self, sessions: sessionmaker[Session], breaker: pybreaker.CircuitBreaker | None) -> None:
        self.sessions = sessions
        self.breaker = breaker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._tables()
        if self.breaker is not None:
            yield GaugeMetricFamily(
                "stepfun_breaker_open",
                "1 while the StepFun circuit breaker is open or half-open (calls suspended or probing)",
                value=0.0 if self.breaker.current_state == pybreaker.STATE_CLOSED else 1.0,
            )

    def _tables(self) -> Iterator[GaugeMetricFamily]:
        now = datetime.now(UTC)
        try:
            with self.sessions() as session:
                jobs, oldest_job = session.execute(
                    select(func.count(), func.min(Job.created_at)).where(Job.status.in_(UNFINISHED_JOBS))
                ).one()
                intents, oldest_intent = session.execute(
                    select(func.count(), func.min(OutboxItem.created_at)).where(
                        OutboxItem.status.in_(UNFINISHED_INTENTS)
                    )
                ).one()
        except Exception:  # a scrape must answer while the DB is down; the gauges are absent then
            log.warning("metrics: the jobs/outbox tables could not be read", exc_info=True)
            return
        yield GaugeMetricFamily("voxpersona_jobs_unfinished", "Pipeline jobs queued or running", value=jobs)
        yield GaugeMetricFamily(
            "voxpersona_jobs_oldest_unfinished_age_seconds",
            "Age of the oldest queued or running pipeline job (0: none)",
            value=_age_s(oldest_job, now),
        )
        yield GaugeMetricFamily(
            "voxpersona_outbox_backlog", "Chain intents not yet confirmed (pending or sent)", value=intents
        )
        yield GaugeMetricFamily(
            "voxpersona_outbox_oldest_pending_age_seconds",
            "Age of the oldest chain intent not yet confirmed (0: none)",
            value=_age_s(oldest_intent, now),
        )


def scrape_time_text(platform: Any) -> bytes:
    """One platform's scrape-time gauges in the Prometheus text format (appended to a /metrics answer)."""
    if platform is None:
        return b""
    # A registry per scrape: cheap, and never bound to a platform that has gone.
    registry = CollectorRegistry(auto_describe=False)
    provider = getattr(platform, "provider", None)
    registry.register(PlatformCollector(platform.sessions, getattr(provider, "breaker", None)))
    return generate_latest(registry)
