"""The logic behind the SpeakerEncoder service: pick and build the encoder (Hydra config or MLflow registry),
warm it up, and embed batches of raw audio into JSON-ready results.

Also `embed_with_retry`, which the platform wraps around its dependency call to the encoder service.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from bentos.core.config import load_config
from encoders.base import SpeakerEncoder, embedding_hash, l2_normalize

log = logging.getLogger(__name__)
SERVICE_RATE = 16000


class EmbeddingResult(TypedDict):
    """One embedding as the service returns it. vector: L2-normalized float32 values as floats, length
    `dim`."""

    vector: list[float]
    dim: int
    hash: str
    encoder: str
    version: str
    pretrained: bool


OVERRIDES_ENV = "VOXPERSONA_OVERRIDES"  # space-separated Hydra overrides, the same for every service


def overrides_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    """The Hydra overrides a service process was started with (`make run ARGS=...` passes them to both)."""
    return (os.environ if env is None else env).get(OVERRIDES_ENV, "").split()


@dataclass(frozen=True)
class EncoderChoice:
    """Which encoder runs, from the Hydra config both services compose from the same overrides.

    source "config": build `cfg.encoder` (configs/encoder/<name>.yaml plus overrides such as `encoder.dim=512`);
    source "registry": load `speaker-encoder-<name>` from MLflow at `alias` (default champion) or `version`.
    """

    name: str
    encoder_cfg: Any
    source: str = "config"
    alias: str | None = "champion"
    version: str | None = None
    registry: Any = None
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)

    @classmethod
    def from_config(cls, cfg: Any) -> EncoderChoice:
        """`encoder`, `encoder_source`, `encoder_alias`, `encoder_version` and `registry` of a composed config;
        VOXPERSONA_ENCODER_THREADS sets torch's threads (default: all CPUs)."""
        from hydra.utils import get_class

        return cls(
            name=str(getattr(get_class(cfg.encoder._target_), "name")),  # noqa: B009  # a SpeakerEncoder class
            encoder_cfg=cfg.encoder,
            source=str(cfg.get("encoder_source") or "config"),
            alias=cfg.get("encoder_alias") or None,
            version=str(cfg.encoder_version) if cfg.get("encoder_version") else None,
            registry=cfg.get("registry"),
            threads=int(os.environ.get("VOXPERSONA_ENCODER_THREADS", "0")) or os.cpu_count() or 1,
        )

    @classmethod
    def from_env(cls) -> EncoderChoice:
        """The choice of a service process: its config composed from VOXPERSONA_OVERRIDES."""
        return cls.from_config(load_config(overrides_from_env()))


def build_from_choice(choice: EncoderChoice) -> SpeakerEncoder:
    """Build (config) or load (registry) the chosen encoder."""
    if choice.source == "registry":
        from encoders.registry import RegistrySettings, load_encoder

        settings = RegistrySettings.from_config(choice.registry)
        return load_encoder(choice.name, alias=choice.alias, version=choice.version, settings=settings)
    if choice.source != "config":
        raise ValueError(f"unknown encoder source {choice.source!r} (config | registry)")
    from encoders import build_encoder

    return build_encoder(choice.encoder_cfg)


def warm_up_noise(seconds: float = 6.0, sample_rate: int = SERVICE_RATE, seed: int = 0) -> np.ndarray:
    """Pink-ish noise float32 [seconds * sample_rate] at 16 kHz: warm-up input (digital silence is rejected by
    Resemblyzer's preprocessing and exercises none of the real code path)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * sample_rate))
    pinkish = np.convolve(white, np.ones(8) / 8, mode="same")
    return (0.1 * pinkish / (np.abs(pinkish).max() + 1e-9)).astype(np.float32)


class EncoderRuntime:
    """An encoder ready to serve: embeds batches of float32 16 kHz clips or audio files into
    `EmbeddingResult`s."""

    def __init__(self, encoder: SpeakerEncoder) -> None:
        self.encoder = encoder

    @classmethod
    def from_choice(cls, choice: EncoderChoice | None = None) -> EncoderRuntime:
        choice = choice or EncoderChoice.from_env()
        # BentoML starts service workers with OMP_NUM_THREADS=1 unless resources say otherwise; that cost ECAPA
        # a third of its throughput (bench_encoders), so the thread count is set here explicitly.
        import torch

        torch.set_num_threads(choice.threads)
        return cls(build_from_choice(choice))

    def warm_up(self) -> None:
        """Run the real code path once (JIT, thread pools, lazy imports) on noise."""
        self.embed_arrays([warm_up_noise(), warm_up_noise(seed=1)])

    def describe(self) -> dict[str, str | int | bool]:
        return self.encoder.describe()

    def _vectors(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        batched = getattr(self.encoder, "embed_arrays", None)
        if callable(batched):
            return np.asarray(batched(list(clips), sample_rate), dtype=np.float32)
        return np.stack([self.encoder.embed_vector(c, sample_rate) for c in clips]).astype(np.float32)

    def result(self, vector: np.ndarray) -> EmbeddingResult:
        unit = l2_normalize(vector)
        return {
            "vector": unit.tolist(),
            "dim": int(unit.shape[0]),
            "hash": embedding_hash(unit),
            "encoder": self.encoder.name,
            "version": str(self.encoder.version),
            "pretrained": bool(self.encoder.pretrained),
        }

    def embed_arrays(
        self, clips: Sequence[np.ndarray], sample_rate: int = SERVICE_RATE
    ) -> list[EmbeddingResult]:
        """clips: each float32 [n] mono at `sample_rate` Hz (already preprocessed) → one result per clip,
        in order."""
        arrays = [np.asarray(c, dtype=np.float32).reshape(-1) for c in clips]
        if not arrays:
            return []
        empty = [i for i, a in enumerate(arrays) if a.size == 0]
        if empty:
            raise ValueError(f"clips {empty} are empty")
        return [self.result(v) for v in self._vectors(arrays, sample_rate)]

    def embed_audio(self, sources: Sequence[bytes | str | Path]) -> list[EmbeddingResult]:
        """Decode + validate + preprocess uploads (WAV/MP3 bytes or paths) with `encoders.load_audio`, then
        embed."""
        from encoders.audio import load_audio

        clips = [load_audio(source) for source in sources]
        return self.embed_arrays([c.samples for c in clips], clips[0].sample_rate if clips else SERVICE_RATE)


def _is_stale_session_error(exc: BaseException) -> bool:
    """True for the transport failures BentoML 1.4.40's dependency client raises when it swaps its session."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ServerDisconnectedError):
        return True
    return isinstance(exc, RuntimeError) and "Session is closed" in str(exc)


async def embed_with_retry(
    embed: Callable[[list[np.ndarray]], Awaitable[Any]],
    clips: list[np.ndarray],
    attempts: int = 3,
    backoff_s: float = 0.05,
) -> Any:
    """Call the encoder service's `embed` (e.g. `self.encoder.to_async.embed`) and retry transport failures.

    Why: BentoML 1.4.40 replaces its client session to a dependency every 100 calls (or 300 s) and closes the
    old one while calls still use it, so some concurrent calls fail with `ServerDisconnectedError` /
    `Connector is closed` (bentoml/BentoML#5540, #5544). Embedding is idempotent, so a retry on a fresh
    session is safe.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await embed(clips)
        except Exception as exc:
            if attempt == attempts or not _is_stale_session_error(exc):
                raise
            log.warning("encoder call failed on a stale BentoML session (attempt %d): %r", attempt, exc)
            await asyncio.sleep(backoff_s * attempt)
    raise AssertionError("unreachable")
