"""Operations and tools: detailed health, Prometheus metrics, and embedding an uploaded file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.schemas import EmbedRequest
from bentos.api.views import EmbeddingView, HealthView, error_responses
from bentos.core import metrics
from bentos.core.intake import embed_upload
from bentos.core.platform import Platform
from bentos.store.db import ping

router = APIRouter(tags=["operations"])


def _queue_health(platform: Platform) -> dict[str, Any]:
    try:
        depth = platform.jobs.depth()
    except Exception as exc:
        return {"state": "down", "error": type(exc).__name__}
    metrics.QUEUE_DEPTH.set(depth)
    return {"state": "ok", "depth": depth, "backend": platform.queue_settings.backend}


@router.get(
    "/health",
    response_model=HealthView,
    responses={503: {"model": HealthView, "description": "the database is down"}},
)
def health(platform: PlatformDep) -> Response:
    """Detailed health (BentoML reserves /healthz, /livez, /readyz): provider key state, chain, DB, queue."""
    db_ok = ping(platform.engine)
    parts: dict[str, dict[str, Any]] = {
        "provider": {**platform.provider_health.as_dict(), "name": platform.provider_settings.name},
        "chain": {"state": "degraded" if platform.chain_error else "ok", "error": platform.chain_error},
        "db": {"state": "ok" if db_ok else "down"},
        "queue": _queue_health(platform),
        # The last ledger↔chain reconciliation (bentos/core/money_loop.py); ok until the loop has run.
        "money": platform.money.health() if platform.money is not None else {"state": "ok"},
    }
    status = "ok" if all(p.get("state") == "ok" for p in parts.values()) else "degraded"
    return JSONResponse({"status": status, **parts}, status_code=200 if db_ok else 503)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(platform: PlatformDep) -> Response:
    """The process's counters, then the gauges read from the database now (queue, outbox, breaker)."""
    return Response(generate_latest() + metrics.scrape_time_text(platform), media_type=CONTENT_TYPE_LATEST)


@router.post("/embeddings", responses=error_responses(400, 401, 404, 410, 413, 422, 503))
async def embed_file(body: EmbedRequest, platform: PlatformDep, account: CallerDep) -> EmbeddingView:
    """Embed one of your uploads → {vector, dim, hash, encoder, version, pretrained}.

    Served by BentoML, this goes through the SpeakerEncoder service (batched with concurrent calls).
    """
    embedding = await embed_upload(
        platform.sessions, platform.blobs, platform.audio, platform.embedder, account, body.file_id
    )
    return EmbeddingView.of(embedding)
