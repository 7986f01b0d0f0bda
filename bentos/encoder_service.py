"""SpeakerEncoderService: the batchable BentoML service that turns 16 kHz clips into speaker embeddings.

Which encoder runs is configuration, not code: the Hydra config composed from VOXPERSONA_OVERRIDES (the same
overrides as the platform service), e.g. `encoder=ecapa`, or `encoder_source=registry` for MLflow (see
bentos.core.encoder_runtime).
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np

with bentoml.importing():
    from bentos.core.encoder_runtime import EncoderRuntime


@bentoml.service(
    name="speaker_encoder",
    traffic={"timeout": 120, "concurrency": 64},
    # bentoml/BentoML#5540, #5544: the dependency client swaps its session every 100 requests while calls are
    # in flight; callers also retry (bentos.core.encoder_runtime.embed_with_retry).
    runner_connection={"max_requests": 1_000_000, "max_age": 86_400.0},
)
class SpeakerEncoderService:
    def __init__(self) -> None:
        self.runtime = EncoderRuntime.from_choice()
        self.runtime.warm_up()

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=10_000)
    def embed(self, clips: list[np.ndarray]) -> list[dict[str, Any]]:
        """clips: float32 [n] mono 16 kHz samples each → one {vector, dim, hash, encoder, version,
        pretrained} each."""
        return [dict(r) for r in self.runtime.embed_arrays(clips)]

    @bentoml.api
    def info(self) -> dict[str, Any]:
        """The running encoder: name, version, dim, sample rate, pretrained, weights provenance."""
        return dict(self.runtime.describe())
