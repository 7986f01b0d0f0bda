"""Durable pipeline jobs on huey: SQLite (embedded) or Redis (scale-out), consumed by threads in-process.

A job running when the process dies is lost by huey, so the pipeline keeps its own state in the DB and
`resume` re-enqueues every unfinished persona at start (steps are idempotent).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer
from huey.exceptions import RetryTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueSettings:
    """configs/queue/*.yaml."""

    backend: str = "sqlite"  # sqlite | redis
    path: str = "var/queue.db"
    url: str = "redis://127.0.0.1:6379/0"
    name: str = "voxpersona"
    workers: int = 2
    max_delay: float = 1.0
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 30.0
    # A worker's lease on a provider call shared by personas of one upload (upload, clone); a crashed
    # worker's lease lapses after this long and another worker takes over.
    claim_lease_s: float = 90.0
    # A persona that failed with a retryable error is tried again after this long, at most max_revivals times.
    revive_after_s: float = 300.0
    max_revivals: int = 6

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter for attempt 1, 2, … (seconds): at least half the ceiling, so
        the attempts together outlast a short provider outage instead of being spent within seconds."""
        ceiling = min(self.retry_cap_seconds, self.retry_base_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def make_huey(settings: QueueSettings) -> Huey:
    if settings.backend == "sqlite":
        Path(settings.path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(settings.name, filename=settings.path, results=False)
    if settings.backend == "redis":
        return RedisHuey(settings.name, url=settings.url, results=False)
    raise ValueError(f"unknown queue backend {settings.backend!r}")


class _ThreadConsumer(Consumer):  # type: ignore[misc]
    """A consumer that runs inside a web process: huey's signal handlers would steal the server's SIGTERM."""

    def _set_signal_handlers(self) -> None:
        pass


class Retry(Exception):
    """Raised by a job to be run again after `delay` seconds (bounded by the caller's attempt count)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.2f}s")
        self.delay = delay


class JobQueue:
    """The platform's queue: one task kind (run a persona's pipeline), enqueue, consume, resume."""

    def __init__(self, settings: QueueSettings, run_pipeline: Callable[[str], None]) -> None:
        self.settings = settings
        self.huey = make_huey(settings)
        self._consumer: Consumer | None = None

        @self.huey.task(name="persona_pipeline")
        def persona_pipeline(persona_id: str) -> None:
            try:
                run_pipeline(persona_id)
            except Retry as retry:
                raise RetryTask(delay=retry.delay) from None

        self._task: Any = persona_pipeline

    def enqueue(self, persona_id: str) -> None:
        self._task(persona_id)

    def register(self, name: str, run: Callable[[str], None]) -> Callable[[str], None]:
        """Another job kind, taking one id (before start()): returns the function that enqueues one.

        Such a job keeps its own attempts and schedule in the DB (bentos/core/outbound.py), so it never retries
        here: whatever it raises is logged by huey and the row's lease brings it back."""
        task: Any = self.huey.task(name=name)(run)

        def enqueue(item_id: str) -> None:
            task(item_id)

        return enqueue

    def depth(self) -> int:
        return int(self.huey.pending_count()) + int(self.huey.scheduled_count())

    def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = _ThreadConsumer(
            self.huey,
            workers=self.settings.workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=self.settings.max_delay,
            check_worker_health=False,
        )
        consumer.start()
        self._consumer = consumer

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None

    def flush(self) -> None:
        """Drop every queued job (tests; the DB state is what resume trusts)."""
        self.huey.flush()
