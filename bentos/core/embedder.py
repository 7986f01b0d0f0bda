"""One encoder path: the pipeline, the impersonation check and `POST /embeddings` all embed through an
`Embedder`. Under `bentoml serve` that is the SpeakerEncoder service (its own process, adaptive batching, the
model loaded once); in tests, scripts and the worker entry point a local encoder in this process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from bentos.core.encoder_runtime import EmbeddingResult, embed_with_retry
from encoders import AudioClip, Embedding, SpeakerEncoder

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Preprocessed clips (`encoders.load_audio`: float32 [n] mono, 16 kHz) → L2-normalized `Embedding`s."""

    def embed(self, clip: AudioClip) -> Embedding:
        """Blocking: for worker threads and thread pools."""
        ...

    async def aembed(self, clip: AudioClip) -> Embedding:
        """For async routes."""
        ...


class LocalEmbedder:
    """An encoder in this process."""

    def __init__(self, encoder: SpeakerEncoder) -> None:
        self.encoder = encoder

    def embed(self, clip: AudioClip) -> Embedding:
        return self.encoder.embed(clip)

    async def aembed(self, clip: AudioClip) -> Embedding:
        return await asyncio.to_thread(self.encoder.embed, clip)


def from_result(result: EmbeddingResult | dict[str, Any]) -> Embedding:
    """An encoder-service answer → an `Embedding` (the service's hash is recomputed and must agree)."""
    embedding = Embedding(
        vector=np.asarray(result["vector"], dtype=np.float32),
        encoder=str(result["encoder"]),
        version=str(result["version"]),
        pretrained=bool(result["pretrained"]),
    )
    if result.get("hash") and result["hash"] != embedding.hash:
        raise ValueError("the encoder service's hash does not match its vector")
    return embedding


class RemoteEmbedder:
    """Through the BentoML SpeakerEncoder service dependency: `call_async` is its `to_async.embed`, bound to
    the server's event loop `loop`. Worker threads (the pipeline) submit their calls to that loop: BentoML's
    own sync client only works from AnyIO worker threads."""

    def __init__(
        self,
        call_async: Callable[[list[np.ndarray]], Awaitable[Any]],
        loop: asyncio.AbstractEventLoop,
        attempts: int = 3,
        timeout_s: float = 300.0,
    ) -> None:
        self._call_async, self._loop, self._attempts, self._timeout_s = call_async, loop, attempts, timeout_s

    def embed(self, clip: AudioClip) -> Embedding:
        return asyncio.run_coroutine_threadsafe(self.aembed(clip), self._loop).result(self._timeout_s)

    async def aembed(self, clip: AudioClip) -> Embedding:
        results = await embed_with_retry(self._call_async, [clip.samples], attempts=self._attempts)
        return from_result(results[0])
