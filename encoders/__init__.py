"""VoxPersona speaker encoders: audio intake and speaker embeddings.

clip = load_audio("voice.mp3")
encoder = build_encoder(cfg.encoder)
embedding = encoder.embed(clip)     # Embedding(vector float32 [dim], hash '0x…', encoder, version)
"""

from __future__ import annotations

from typing import Any

from encoders.audio import AudioClip, AudioError, AudioSettings, load_audio
from encoders.base import Embedding, SpeakerEncoder, embedding_hash

__all__ = [
    "AudioClip",
    "AudioError",
    "AudioSettings",
    "Embedding",
    "SpeakerEncoder",
    "build_encoder",
    "embedding_hash",
    "load_audio",
]


def build_encoder(cfg: Any) -> SpeakerEncoder:
    """Build any encoder from its Hydra config node (a mapping with `_target_`)."""
    from hydra.utils import instantiate

    encoder = instantiate(cfg)
    if not isinstance(encoder, SpeakerEncoder):
        raise TypeError(f"{cfg.get('_target_')} did not build a SpeakerEncoder")
    return encoder
