"""Idempotency keys with Stripe's semantics: same key + same body → the stored response; other body → 409."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.errors import PlatformError
from bentos.store.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str


def request_hash(method: str, route: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + route.encode() + b"\n" + body).hexdigest()


class IdempotencyStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def begin(self, key: str, account_ref: str, route: str, req_hash: str) -> StoredResponse | None:
        """Claim `key`; returns the stored response for a replay, None when this request should run.

        Raises 409 when the key was used with another body, or while the first request is still running.
        """
        if not key or len(key) > MAX_KEY_LENGTH:
            raise PlatformError(
                "invalid_idempotency_key", f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} chars"
            )
        with self._sessions.begin() as session:
            row = self._find(session, key, account_ref, route)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(
                            IdempotencyRecord(
                                key=key, account_ref=account_ref, route=route, request_hash=req_hash
                            )
                        )
                    return None
                except IntegrityError:
                    row = self._find(session, key, account_ref, route)
                    assert row is not None
            if row.request_hash != req_hash:
                raise PlatformError(
                    "idempotency_key_reused", "this Idempotency-Key was used with a different request", 409
                )
            if row.status_code is None:
                raise PlatformError(
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still running",
                    409,
                    True,
                )
            return StoredResponse(row.status_code, row.body or b"", row.content_type or "application/json")

    def finish(self, key: str, account_ref: str, route: str, response: StoredResponse) -> None:
        with self._sessions.begin() as session:
            self.finish_in(session, key, account_ref, route, response)

    @classmethod
    def finish_in(
        cls, session: Session, key: str, account_ref: str, route: str, response: StoredResponse
    ) -> None:
        """Store the response within the caller's transaction (e.g. with the blob it references)."""
        row = cls._find(session, key, account_ref, route)
        if row is not None:
            row.status_code, row.body = response.status_code, response.body
            row.content_type = response.content_type

    def abandon(self, key: str, account_ref: str, route: str) -> None:
        """Forget a claim whose request failed with a retryable error, so the same key may be retried."""
        with self._sessions.begin() as session:
            row = self._find(session, key, account_ref, route)
            if row is not None and row.status_code is None:
                session.delete(row)

    @staticmethod
    def _find(session: Session, key: str, account_ref: str, route: str) -> IdempotencyRecord | None:
        return session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.key == key,
                IdempotencyRecord.account_ref == account_ref,
                IdempotencyRecord.route == route,
            )
        )
