"""PersonaPlatform: the REST API (FastAPI, mounted) with the pipeline workers and chain outbox in-process.

Settings come from Hydra: VOXPERSONA_OVERRIDES="db=postgres queue=redis" (space-separated overrides), the same
overrides the SpeakerEncoder service composes its config from. Every embedding goes through that service.
"""

from __future__ import annotations

import asyncio

import bentoml

with bentoml.importing():
    from bentos.api.app import create_app
    from bentos.core import metrics
    from bentos.core.embedder import RemoteEmbedder
    from bentos.core.encoder_runtime import overrides_from_env
    from bentos.core.logs import configure_logging
    from bentos.core.platform import compose
    from bentos.encoder_service import SpeakerEncoderService

app = create_app(None)


@bentoml.service(name="persona_platform", workers=1, traffic={"timeout": 300, "concurrency": 256})
@bentoml.asgi_app(app, path="/")
class PersonaPlatform:
    encoder = bentoml.depends(SpeakerEncoderService)

    def __init__(self) -> None:
        configure_logging()  # JSON lines on stderr; after BentoML's own logging setup, which it would replace
        # Looked up per call: the dependency's endpoints exist only once its client has connected. BentoML
        # builds the service inside its server's event loop, which the pipeline's threads submit calls to.
        embedder = RemoteEmbedder(
            lambda clips: self.encoder.to_async.embed(clips), asyncio.get_running_loop()
        )
        self.platform = compose(overrides_from_env(), embedder=embedder).start()
        app.state.platform = self.platform

    def __metrics__(self, content: str) -> str:
        """BentoML's /metrics, plus the gauges read from the database at scrape time (queue, outbox, breaker)."""
        return content + metrics.scrape_time_text(self.platform).decode()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.platform.stop()
