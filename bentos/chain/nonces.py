"""A single-writer nonce allocator per signer: the only way this process picks a nonce for a key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class NonceAllocator:
    """Hands out consecutive nonces for one signer; thread-safe.

    The lock is held from allocation until the signed transaction has been handed to the node, so the node
    always sees nonces in order and a failed send can resync from the node's pending count without racing a
    sibling thread. Assumes one process sends for a signer (the outbox dispatcher is that process).
    """

    def __init__(self, pending_count: Callable[[], int]) -> None:
        self._pending_count = pending_count
        self._lock = threading.Lock()
        self._next: int | None = None

    @contextmanager
    def reserve(self) -> Iterator[int]:
        """Yield the next nonce; it counts as used only if the block exits without an exception."""
        with self._lock:
            if self._next is None:
                self._next = self._pending_count()
            nonce = self._next
            try:
                yield nonce
            except BaseException:
                # The node may or may not have taken the nonce (a revert can be mined): ask it next time.
                self._next = None
                raise
            self._next = nonce + 1

    def resync(self) -> None:
        """Forget the local counter; the next reservation reads the node's pending count."""
        with self._lock:
            self._next = None
