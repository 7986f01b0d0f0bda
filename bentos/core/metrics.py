"""The platform's Prometheus metrics (also exported on BentoML's /metrics when served by BentoML)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("voxpersona_http_requests", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("voxpersona_http_request_seconds", "HTTP request latency", ["method", "route"])
PROVIDER_CALLS = Counter("voxpersona_provider_calls", "StepFun speech calls by outcome", ["outcome"])
PROVIDER_LATENCY = Histogram("voxpersona_provider_first_byte_seconds", "StepFun time to first audio byte")
QUEUE_DEPTH = Gauge("voxpersona_queue_depth", "Pipeline jobs queued or scheduled")
USAGE_EVENTS = Counter("voxpersona_usage_events", "Metered speech requests")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
