"""Idempotency keys with Stripe's semantics: same key + same body → the stored response; other body → 409.

One mechanism for every POST: `begin` claims the key (or finds the stored response), `finish` stores the
response, `fail` stores a client error or frees the key, `abandon` frees it. How a body is kept is pluggable:
JSON answers inline, streamed TTS audio as a reference to a held blob.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.errors import ErrorCode, PlatformError
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore
from bentos.store.models import IdempotencyRecord, utcnow

MAX_KEY_LENGTH = 255
JSON = "application/json"
# An unfinished claim older than this belongs to a request whose process died (a killed platform never frees
# it): a retry with the key takes it over instead of meeting 409 forever. Longer than any request runs.
CLAIM_LEASE_S = 120.0


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str


def payload_hash(payload: Any) -> str:
    """The request's fingerprint: sha256 of its canonical JSON (key order does not matter)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class BodyKeeping(Protocol):
    """How a response body is kept in the idempotency record."""

    def keep(self, session: Session, body: bytes) -> bytes:
        """What to store for `body`, inside the transaction that stores the record."""
        ...

    def restore(self, stored: bytes) -> bytes:
        """The body to replay from what was stored."""
        ...


class InlineBody:
    """The bytes themselves (JSON answers are small)."""

    def keep(self, session: Session, body: bytes) -> bytes:
        return body

    def restore(self, stored: bytes) -> bytes:
        return stored


@dataclass(frozen=True)
class BlobBody:
    """A reference to a content-addressed blob (audio is large): held in the record's own transaction, so a
    concurrent release can't delete the bytes the record is about to reference."""

    blobs: BlobStore

    def keep(self, session: Session, body: bytes) -> bytes:
        return blob_refs.REPLAY_REF + blob_refs.hold(session, self.blobs, body).encode()

    def restore(self, stored: bytes) -> bytes:
        if stored.startswith(blob_refs.REPLAY_REF):
            return self.blobs.get(stored[len(blob_refs.REPLAY_REF) :].decode())
        return stored


@dataclass
class Idempotency:
    """One request under an optional Idempotency-Key. Without a key every step is a no-op: the request runs."""

    sessions: sessionmaker[Session]
    key: str | None
    account_ref: str  # an account id, or a hash of an anonymous caller
    route: str
    request_hash: str
    bodies: BodyKeeping = field(default_factory=InlineBody)
    lease_s: float = CLAIM_LEASE_S

    def begin(self) -> StoredResponse | None:
        """Claim the key; returns the stored response for a replay, None when this request should run.

        Raises 409 when the key was used with another body, or while the first request is still running.
        """
        if self.key is None:
            return None
        if not self.key or len(self.key) > MAX_KEY_LENGTH:
            raise PlatformError(
                ErrorCode.INVALID_IDEMPOTENCY_KEY, f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} chars"
            )
        with self.sessions.begin() as session:
            row = self._find(session)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            IdempotencyRecord(
                                key=self.key,
                                account_ref=self.account_ref,
                                route=self.route,
                                request_hash=self.request_hash,
                            )
                        )
                    return None
                except IntegrityError:  # a concurrent first request claimed it
                    row = self._find(session)
                    assert row is not None
            if row.request_hash != self.request_hash:
                raise PlatformError(
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used with a different request",
                    409,
                )
            if row.status_code is None and _age_s(row.created_at) > self.lease_s:
                row.created_at = utcnow()  # the first request died unfinished: this retry runs it again
                return None
            if row.status_code is None:
                raise PlatformError(
                    ErrorCode.IDEMPOTENCY_IN_PROGRESS,
                    "a request with this Idempotency-Key is still running",
                    409,
                    True,
                )
            stored = StoredResponse(row.status_code, row.body or b"", row.content_type or JSON)
        return StoredResponse(stored.status_code, self.bodies.restore(stored.body), stored.content_type)

    def finish(self, response: StoredResponse) -> None:
        """Store the response a replay will get."""
        if self.key is None:
            return
        with self.sessions.begin() as session:
            row = self._find(session)
            if row is not None:
                row.status_code, row.content_type = response.status_code, response.content_type
                row.body = self.bodies.keep(session, response.body)

    def fail(self, err: PlatformError) -> None:
        """A client error is stored (the same request would fail the same way); a retryable one, or ours,
        frees the key so the same request may be retried."""
        if err.retryable or err.status >= 500:
            self.abandon()
        else:
            self.finish(StoredResponse(err.status, json.dumps(err.envelope()).encode(), JSON))

    def abandon(self) -> None:
        """Forget an unfinished claim."""
        if self.key is None:
            return
        with self.sessions.begin() as session:
            row = self._find(session)
            if row is not None and row.status_code is None:
                session.delete(row)

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Run the request's work inside: a failure is stored or frees the key, as `fail` decides."""
        try:
            yield
        except PlatformError as err:
            self.fail(err)
            raise
        except BaseException:
            self.abandon()
            raise

    def _find(self, session: Session) -> IdempotencyRecord | None:
        return session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.key == self.key,
                IdempotencyRecord.account_ref == self.account_ref,
                IdempotencyRecord.route == self.route,
            )
        )


def _age_s(when: datetime) -> float:
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return (utcnow() - aware).total_seconds()
