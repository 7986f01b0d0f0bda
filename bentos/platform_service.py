"""PersonaPlatform: the REST API (FastAPI, mounted) with the pipeline workers and chain outbox in-process.

Settings come from Hydra: VOXPERSONA_OVERRIDES="db=postgres queue=redis" (space-separated overrides).
"""

from __future__ import annotations

import os

import bentoml

with bentoml.importing():
    from bentos.api.app import create_app
    from bentos.core.config import load_config
    from bentos.core.embedder import embed_with_retry
    from bentos.core.platform import Platform
    from bentos.encoder_service import SpeakerEncoderService

app = create_app(None)


@bentoml.service(name="persona_platform", workers=1, traffic={"timeout": 300, "concurrency": 256})
@bentoml.asgi_app(app, path="/")
class PersonaPlatform:
    encoder = bentoml.depends(SpeakerEncoderService)

    def __init__(self) -> None:
        self.platform = Platform(load_config(os.environ.get("VOXPERSONA_OVERRIDES", "").split())).start()
        # Embeddings requested over the API go through the encoder service (retrying BentoML #5540/#5544).
        self.platform.remote_embed = lambda clips: embed_with_retry(self.encoder.to_async.embed, clips)
        app.state.platform = self.platform

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.platform.stop()
