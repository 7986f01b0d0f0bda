"""Who holds a blob: blobs are content-addressed, so equal bytes from two accounts share one blob, and a delete
must remove only what no row references any more.

References are read from the rows that hold blob keys (uploads, persona samples, voice-clone samples, stored
TTS replays), so there is no counter to drift. `hold` and `release` both lock the blob's row first: on
PostgreSQL a row lock, on SQLite the database write lock. A release therefore never deletes bytes that a
concurrent transaction is about to reference: whichever locks second sees the other's outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bentos.store.blobs import BlobStore
from bentos.store.models import BlobRow, IdempotencyRecord, Persona, StoredFile, VoiceClone

REPLAY_REF = b"blob:"  # an idempotency record whose body is REPLAY_REF + key replays that blob


def _lock(session: Session, key: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(BlobRow).values(key=key)
    # DO UPDATE (not DO NOTHING) so PostgreSQL takes the row lock even when the row exists.
    session.execute(stmt.on_conflict_do_update(index_elements=[BlobRow.key], set_={"key": stmt.excluded.key}))


def hold(session: Session, blobs: BlobStore, data: bytes) -> str:
    """Store `data` for a reference this transaction is about to write; returns its key.

    Call inside the transaction that writes the reference: the lock keeps a concurrent release from deleting
    the bytes before this transaction commits.
    """
    key = hashlib.sha256(data).hexdigest()
    _lock(session, key)
    blobs.put(data)  # writes the bytes again if a release removed them just before we locked
    return key


def adopt(session: Session, blobs: BlobStore, key: str) -> bool:
    """Lock an existing blob for a new reference this transaction writes; False when it is gone."""
    _lock(session, key)
    return blobs.exists(key)


def references(session: Session, key: str) -> int:
    """How many rows reference blob `key`."""
    counts = [
        select(func.count()).where(StoredFile.blob_key == key),
        select(func.count()).where(Persona.sample_blob_key == key),
        select(func.count()).where(VoiceClone.sample_blob_key == key),
        select(func.count()).where(IdempotencyRecord.body == REPLAY_REF + key.encode()),
    ]
    return sum(int(session.scalar(stmt) or 0) for stmt in counts)


def release(sessions: sessionmaker[Session], blobs: BlobStore, keys: Iterable[str]) -> list[str]:
    """After the transaction that dropped references has committed: delete each blob nothing references now.

    Returns the keys deleted. A crash between the commit and here leaves an orphan blob, never a dangling
    reference.
    """
    deleted = []
    for key in dict.fromkeys(keys):
        with sessions.begin() as session:
            _lock(session, key)
            if references(session, key) == 0:
                session.execute(delete(BlobRow).where(BlobRow.key == key))
                blobs.delete(key)
                deleted.append(key)
    return deleted
