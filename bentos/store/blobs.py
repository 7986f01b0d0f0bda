"""Blob storage for uploads, samples and generated audio: content-addressed keys, never client file names.

`LocalBlobStore` is the embedded default; `bentos.store.s3.S3BlobStore` (`blobs=s3`) implements the same
`BlobStore` protocol on an S3-compatible server.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from bentos.store.local_files import atomic_write


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store bytes; returns the key (sha256 hex of the content). Storing equal bytes twice is a no-op."""
        ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def download_url(self, key: str, expires_s: int, content_type: str | None = None) -> str | None:
        """An expiring URL that serves the blob without credentials, or None: then stream it from `get`."""
        ...


def check_key(key: str) -> None:
    """KeyError unless `key` is a blob key (64 lowercase hex digits): never a path or a client's name."""
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise KeyError(f"not a blob key: {key[:80]!r}")


class LocalBlobStore:
    """Files under root/ab/cd/<sha256>, written atomically (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        atomic_write(path, data)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def download_url(self, key: str, expires_s: int, content_type: str | None = None) -> str | None:
        """None: a local folder has no URL of its own, so callers stream the bytes."""
        check_key(key)
        return None
