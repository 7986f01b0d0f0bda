"""The seeded random encoder: a reproducible placeholder vector per preprocessed audio (no speaker information).

Its EER is ~50 % by construction; it exists so identity hashes and chain registration work before a real
encoder is chosen, and as the floor every real encoder must beat.
"""

from __future__ import annotations

import hashlib

import numpy as np

from encoders.audio import AudioClip, samples_sha256
from encoders.base import Embedding, SpeakerEncoder, l2_normalize


class SeededEncoder(SpeakerEncoder):
    """vector = N(0, 1)^dim from PCG64 seeded by sha256(f"{seed}:{audio_sha256}"), L2-normalized.

    numpy's PCG64 + standard_normal is bit-identical across processes, platforms and numpy 1.17+.
    """

    name = "seeded"
    pretrained = False

    def __init__(self, dim: int = 256, seed: int = 0, version: str = "1", sample_rate: int = 16000) -> None:
        if dim not in (256, 512):
            raise ValueError(f"dim must be 256 or 512, got {dim}")
        self.dim = dim
        self.seed = seed
        self.version = version
        self.sample_rate = sample_rate

    def vector_for(self, audio_sha256: str) -> np.ndarray:
        """float32 [dim], unit norm, for the sha256 hex of a preprocessed clip."""
        digest = hashlib.sha256(f"{self.seed}:{audio_sha256}".encode()).digest()
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
        return l2_normalize(rng.standard_normal(self.dim, dtype=np.float64).astype(np.float32))

    def embed_vector(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.vector_for(samples_sha256(samples))

    def embed(self, clip: AudioClip) -> Embedding:
        # The clip already carries the sha256 of its preprocessed samples: don't hash 8 s of audio twice.
        return Embedding(self.vector_for(clip.audio_sha256), self.name, self.version, self.pretrained)
