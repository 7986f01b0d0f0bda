"""The running platform: every part built from the Hydra config, plus the background loops (jobs, chain outbox).

Used the same way by the BentoML service, `make run`, the worker entry point and the tests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig
from sqlalchemy import select

from bentos.billing.pricing import PriceBook
from bentos.chain.outbox import OutboxDispatcher
from bentos.chain.registry import ChainRegistry
from bentos.chain.settings import money_on_chain
from bentos.core import funds, metrics
from bentos.core.config import ServerSettings, load_config
from bentos.core.consent import ConsentSettings
from bentos.core.embedder import Embedder, LocalEmbedder
from bentos.core.encoder_runtime import EncoderChoice, build_from_choice
from bentos.core.jobs import JobQueue, QueueSettings
from bentos.core.key_limits import KeyRateLimiter
from bentos.core.moderation import NO_MODERATION, Moderation
from bentos.core.money_loop import MoneyLoop
from bentos.core.outbound import RetryPolicy
from bentos.core.personas import PIPELINE_STATES
from bentos.core.pipeline import PersonaPipeline
from bentos.core.provider_cleanup import ProviderCleanupRunner
from bentos.core.webhooks import WebhookSender, WebhookSettings
from bentos.stepfun.client import AsyncStepFunClient, StepFunClient
from bentos.stepfun.health import ProviderHealth
from bentos.stepfun.settings import ProviderSettings
from bentos.store.blobs import BlobStore
from bentos.store.db import DatabaseSettings, make_engine, migrate, session_factory
from bentos.store.models import Persona
from encoders import AudioSettings

log = logging.getLogger(__name__)


def local_embedder(cfg: DictConfig) -> Embedder:
    """The configured encoder (or its MLflow registry version) in this process."""
    return LocalEmbedder(build_from_choice(EncoderChoice.from_config(cfg)))


def compose(overrides: Sequence[str] | None = None, *, embedder: Embedder | None = None) -> Platform:
    """The composition root, used alike by both services, the scripts and the tests: every part built from
    configs/ with Hydra `overrides`. Without `embedder`, the encoder runs in this process."""
    return Platform(load_config(overrides), embedder=embedder)


class Platform:
    """All the parts, built once from a config. `start()` runs the background loops; `stop()` ends them."""

    def __init__(self, cfg: DictConfig, embedder: Embedder | None = None) -> None:
        self.cfg = cfg
        self.server: ServerSettings = instantiate(cfg.server)
        self.audio: AudioSettings = instantiate(cfg.audio)
        self.prices: PriceBook = instantiate(cfg.billing, _convert_="all")
        self.key_limiter = KeyRateLimiter(self.prices.key_requests_per_minute)
        node = cfg.get("moderation")
        self.moderation: Moderation = (
            instantiate(node, _convert_="all") if node is not None else NO_MODERATION
        )
        db: DatabaseSettings = instantiate(cfg.db)
        self.engine = make_engine(db)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.blobs: BlobStore = instantiate(cfg.blobs)
        self.embedder = embedder or local_embedder(cfg)
        self.provider_settings: ProviderSettings = instantiate(cfg.provider)
        self.provider_health = ProviderHealth()
        self.provider = StepFunClient(self.provider_settings, health=self.provider_health)
        self.async_provider = AsyncStepFunClient(self.provider_settings, health=self.provider_health)
        self.chain_settings: Any = instantiate(cfg.chain)
        self._chain: ChainRegistry | None = None
        self._chain_lock = threading.Lock()
        self.queue_settings: QueueSettings = instantiate(cfg.queue)
        self.pipeline = PersonaPipeline(
            self.sessions,
            self.blobs,
            self.audio,
            self.embedder,
            self.provider,
            self.queue_settings,
            self.prices,
            impersonation_threshold=(
                cfg.encoder.get("impersonation_threshold") if self.moderation.impersonation_review else None
            ),
        )
        self.jobs = JobQueue(self.queue_settings, self.pipeline.run)
        # Consent challenges, webhooks and provider clean-ups (docs/architecture.md §5): the last two are sent
        # by the job queue, claimed when due by the background loop.
        self.consent: ConsentSettings = instantiate(cfg.consent, _convert_="all")
        self.webhook_settings: WebhookSettings = instantiate(cfg.webhooks, _convert_="all")
        self.webhooks = WebhookSender(self.sessions, self.webhook_settings)
        cleanup_policy = RetryPolicy(
            max_attempts=12, base_s=self.queue_settings.retry_base_seconds, cap_s=600.0
        )
        self.provider_cleanup = ProviderCleanupRunner(self.sessions, self.provider, cleanup_policy)
        self._send_webhook = self.jobs.register("webhook_delivery", self.webhooks.attempt)
        self._clean_provider = self.jobs.register("provider_cleanup", self.provider_cleanup.attempt)
        self._stop = threading.Event()
        self._outbox_thread: threading.Thread | None = None
        self.money: MoneyLoop | None = None
        self.chain_error: str | None = None

    # --- chain ----------------------------------------------------------------------------------------------

    @property
    def chain(self) -> ChainRegistry:
        """The registry, connected on first use (eth-tester: deployed in-process then)."""
        with self._chain_lock:
            if self._chain is None:
                self._chain = self.chain_settings.connect()
            return self._chain

    def money_loop(self) -> MoneyLoop:
        """Crypto top-ups, payout follow-up, settlement cycles and reconciliation (bentos/core/money_loop.py)."""
        if self.money is None:
            self.money = MoneyLoop(
                self.sessions, self.chain, self.prices, money_on_chain(self.chain_settings)
            )
        return self.money

    def _outbox_loop(self, interval_s: float) -> None:
        dispatcher: OutboxDispatcher | None = None
        next_gauge = next_revival = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_gauge:  # the queue-depth gauge, refreshed every few seconds
                with contextlib.suppress(Exception):
                    metrics.QUEUE_DEPTH.set(self.jobs.depth())
                next_gauge = time.monotonic() + 5
            if time.monotonic() >= next_revival:
                try:
                    for persona_id in self.pipeline.revive_retryable():
                        self.jobs.enqueue(persona_id)
                    funds.release_stale_holds(self.sessions)
                except Exception:
                    log.exception("reviving failed pipelines or releasing stale holds failed")
                next_revival = time.monotonic() + min(30.0, self.queue_settings.revive_after_s / 2)
            try:
                self.webhooks.dispatch_due(self._send_webhook)
                self.provider_cleanup.dispatch_due(self._clean_provider)
            except Exception:
                log.exception("dispatching webhook deliveries or provider clean-ups failed")
            try:
                dispatcher = dispatcher or OutboxDispatcher(self.sessions, self.chain)
                report = dispatcher.dispatch_pending()
                self.chain_error = "chain unavailable" if report.chain_unavailable else None
            except Exception as exc:  # keep the loop alive; the outbox keeps every intent
                self.chain_error = f"{type(exc).__name__}"
                log.exception("outbox dispatch failed")
            with contextlib.suppress(Exception):  # top-ups, payouts, cycles, reconciliation (logs its own)
                self.money_loop().tick()
            self._stop.wait(interval_s)

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self, outbox_interval_s: float = 0.2) -> Platform:
        self._stop.clear()
        self.jobs.start()
        self.resume()
        self._outbox_thread = threading.Thread(
            target=self._outbox_loop, args=(outbox_interval_s,), name="chain-outbox", daemon=True
        )
        self._outbox_thread.start()
        return self

    def resume(self) -> int:
        """Re-enqueue every persona whose pipeline had not finished (jobs running at a crash are lost)."""
        unfinished = list(PIPELINE_STATES[:-1])
        with self.sessions() as session:
            ids = list(
                session.scalars(
                    select(Persona.id).where(Persona.state.in_(unfinished), Persona.revoked_at.is_(None))
                )
            )
        for persona_id in ids:
            self.jobs.enqueue(persona_id)
        if ids:
            log.info("resumed %d unfinished persona pipelines", len(ids))
        return len(ids)

    def stop(self) -> None:
        self._stop.set()
        self.jobs.stop()
        if self._outbox_thread is not None:
            self._outbox_thread.join(timeout=10)
        self.provider.close()
        self.engine.dispose()
