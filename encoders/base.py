"""The speaker-encoder contract: an `Embedding` value and the `SpeakerEncoder` base every encoder implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from eth_hash.auto import keccak

if TYPE_CHECKING:
    from encoders.audio import AudioClip


def canonical_bytes(vector: np.ndarray) -> bytes:
    """The canonical encoding of a vector: little-endian float32, C order. vector: any real array of shape [dim]."""
    return np.ascontiguousarray(np.asarray(vector), dtype="<f4").tobytes()


def embedding_hash(vector: np.ndarray) -> str:
    """`0x` + keccak256 of the canonical float32 bytes: the value the chain stores for an embedding."""
    return "0x" + keccak(canonical_bytes(vector)).hex()


def l2_normalize(vector: np.ndarray) -> np.ndarray:
    """float32 [dim] scaled to unit L2 norm (a zero vector is returned unchanged).

    Bit-identical on every CPU: the norm is a correctly rounded sum (math.fsum) of float64 squares and each element
    is divided in float64 — numpy's float32 `norm` sums in an order that depends on the machine's SIMD width, and
    the chain stores a hash of these bytes."""
    v = np.asarray(vector, dtype=np.float32)
    wide = v.astype(np.float64)
    norm = math.sqrt(math.fsum(np.square(wide).tolist()))
    return v if norm == 0.0 else (wide / norm).astype(np.float32)


@dataclass(frozen=True)
class Embedding:
    """A speaker embedding. vector: float32 [dim], L2-normalized; hash: see `embedding_hash`."""

    vector: np.ndarray
    encoder: str
    version: str
    pretrained: bool
    hash: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vec = np.ascontiguousarray(self.vector, dtype=np.float32)
        object.__setattr__(self, "vector", vec)
        if not self.hash:
            object.__setattr__(self, "hash", embedding_hash(vec))

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    def cosine(self, other: Embedding) -> float:
        """Cosine similarity in [-1, 1] with another embedding of the same dim."""
        a, b = self.vector, other.vector
        denom = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
        return float(np.dot(a, b) / denom)


class SpeakerEncoder(ABC):
    """Maps a preprocessed clip to a fixed-size speaker embedding.

    Subclasses set `name`, `dim`, `sample_rate` (the rate `embed` expects clips at) and `pretrained`
    (True only when real trained weights were loaded — never claimed for random init).
    """

    name: str = "base"
    dim: int = 0
    sample_rate: int = 16000
    pretrained: bool = False
    version: str = "0"

    @abstractmethod
    def embed_vector(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """samples: float32 [n] mono at `sample_rate` Hz → float32 [dim] (not necessarily normalized)."""

    def embed(self, clip: AudioClip) -> Embedding:
        """Embed one preprocessed clip (float32 [n] mono) → an L2-normalized `Embedding`."""
        vector = l2_normalize(self.embed_vector(clip.samples, clip.sample_rate))
        return Embedding(vector=vector, encoder=self.name, version=self.version, pretrained=self.pretrained)

    def embed_batch(self, clips: Sequence[AudioClip]) -> list[Embedding]:
        """Embed many clips; encoders with a real batched forward pass override this."""
        return [self.embed(clip) for clip in clips]

    def describe(self) -> dict[str, str | int | bool]:
        return {
            "encoder": self.name,
            "version": self.version,
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "pretrained": self.pretrained,
        }
