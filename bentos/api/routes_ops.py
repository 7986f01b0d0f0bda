"""Operations and tools: detailed health, Prometheus metrics, and embedding an uploaded file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bentos.api.deps import caller, platform_of
from bentos.api.schemas import EmbedRequest
from bentos.core import metrics
from bentos.core.intake import owned_upload_clip
from bentos.store.db import ping

router = APIRouter(tags=["operations"])


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """Detailed health (BentoML reserves /healthz, /livez, /readyz): provider key state, chain, DB, queue."""
    platform = platform_of(request)
    db_ok = ping(platform.engine)
    try:
        depth = platform.jobs.depth()
        queue: dict[str, Any] = {"state": "ok", "depth": depth, "backend": platform.queue_settings.backend}
        metrics.QUEUE_DEPTH.set(depth)
    except Exception as exc:
        queue = {"state": "down", "error": type(exc).__name__}
    provider = {**platform.provider_health.as_dict(), "name": platform.provider_settings.name}
    chain = {"state": "degraded" if platform.chain_error else "ok", "error": platform.chain_error}
    parts: dict[str, dict[str, Any]] = {
        "provider": provider,
        "chain": chain,
        "db": {"state": "ok" if db_ok else "down"},
        "queue": queue,
    }
    status = "ok" if all(p.get("state") == "ok" for p in parts.values()) else "degraded"
    return JSONResponse({"status": status, **parts}, status_code=200 if db_ok else 503)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.post("/embeddings")
async def embed_file(body: EmbedRequest, request: Request) -> dict[str, Any]:
    """Embed one of your uploads → {vector, dim, hash, encoder, version, pretrained}.

    Served by BentoML, this goes through the SpeakerEncoder service (batched with concurrent calls).
    """
    platform = platform_of(request)
    account = await run_in_threadpool(caller, request)
    clip = await run_in_threadpool(
        owned_upload_clip, platform.sessions, platform.blobs, platform.audio, account, body.file_id
    )
    embedding = await platform.embedder.aembed(clip)
    return {
        "vector": [float(x) for x in embedding.vector],
        "dim": embedding.dim,
        "hash": embedding.hash,
        "encoder": embedding.encoder,
        "version": embedding.version,
        "pretrained": embedding.pretrained,
    }
