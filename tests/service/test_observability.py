"""What operators and browsers see around every answer: JSON log lines with the request's id (secrets never in
them), Prometheus metrics read from the database at scrape time, security headers on every response — the
request guard's own refusals and 500s included — and CORS only for the configured origins."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from bentos.api.app import create_app
from bentos.api.guard import JSON_BODY_LIMIT
from bentos.chain.outbox import Outbox
from bentos.core.logs import configure_logging, unconfigure_logging
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for

ALLOWED_ORIGIN = "https://app.voxpersona.example"
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


@pytest.fixture(scope="module")
def observed(
    emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    overrides = [
        *platform_overrides(tmp_path_factory.mktemp("observed"), emulator),
        "encoder=seeded",
        f"server.cors_origins=[{ALLOWED_ORIGIN}]",
    ]
    running = start_platform(overrides, start_jobs=False)
    try:
        yield running
    finally:
        running.stop()


class Captured:
    """The JSON lines logged while a test runs."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access_line(self, request_id: str) -> dict[str, Any] | None:
        found = [r for r in self.lines() if r.get("logger") == "bentos.access"]
        return next((r for r in found if r.get("request_id") == request_id), None)


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", stream=stream, exclusive=False)  # keep pytest's own handlers
    try:
        yield Captured(stream)
    finally:
        unconfigure_logging(handler)
        root.setLevel(level)


def _fails_once(monkeypatch: pytest.MonkeyPatch, running: RunningPlatform, message: str) -> None:
    health = running.platform.provider_health
    real, calls = health.as_dict, []

    def as_dict() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(message)
        return real()

    monkeypatch.setattr(health, "as_dict", as_dict)


# --- security headers ------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers_guard_refusals_and_500s_included(
    observed: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = observed.client()
    answers = {
        200: client.get("/v1/limits"),
        401: client.get("/accounts/me"),
        404: client.get("/no-such-route"),
        # Refused by RequestGuard before the app runs.
        413: client.post(
            "/accounts",
            content=b"[" + b" " * JSON_BODY_LIMIT + b"]",
            headers={"content-type": "application/json"},
        ),
    }
    _fails_once(monkeypatch, observed, "boom")
    answers[500] = client.get("/health")
    for status, response in answers.items():
        assert response.status_code == status, response.text
        assert {name: response.headers.get(name) for name in SECURITY} == SECURITY, status
        assert response.headers["cache-control"] == "no-store", status  # every one of these is JSON
        assert response.headers["x-request-id"], status
    assert answers[413].json()["error"]["code"] == "request_too_large"
    assert answers[500].json()["error"]["code"] == "internal_error"


def test_non_json_answers_get_the_security_headers_but_keep_their_own_caching(
    observed: RunningPlatform,
) -> None:
    docs = observed.client().get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert {name: docs.headers.get(name) for name in SECURITY} == SECURITY
    assert "cache-control" not in docs.headers


# --- CORS ------------------------------------------------------------------------------------------------


def _preflight(client: httpx.Client | TestClient, origin: str) -> Any:
    return client.options(
        "/tts",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_a_listed_origin_may_call_cross_origin_and_others_may_not(observed: RunningPlatform) -> None:
    client = observed.client()
    listed = _preflight(client, ALLOWED_ORIGIN)
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in listed.headers["access-control-allow-methods"]
    assert listed.headers.get("x-frame-options") == "DENY"

    unlisted = _preflight(client, "https://evil.example")
    assert "access-control-allow-origin" not in unlisted.headers
    simple = client.get("/v1/limits", headers={"Origin": "https://evil.example"})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    allowed = client.get("/v1/limits", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()


def test_by_default_no_origin_may_call_cross_origin() -> None:
    with TestClient(create_app(None)) as client:
        for origin in ("https://evil.example", "http://127.0.0.1:8501", "null"):
            answer = _preflight(client, origin)
            assert "access-control-allow-origin" not in answer.headers
            assert answer.headers["x-content-type-options"] == "nosniff"


# --- request ids and JSON logs ---------------------------------------------------------------------------


def test_a_sane_request_id_is_echoed_and_lands_in_the_access_line(
    observed: RunningPlatform, logs: Captured
) -> None:
    request_id = f"client-{secrets.token_hex(4)}.retry_1"
    voice_id = "p_" + secrets.token_hex(6)
    answer = observed.client().get(
        f"/voices/{voice_id}/quote",
        params={"chars": 120, "key": "do-not-log"},
        headers={"X-Request-Id": request_id},
    )
    assert answer.headers["x-request-id"] == request_id
    line = wait_for(lambda: logs.access_line(request_id), timeout=5, what="the access line")
    assert line["level"] == "info" and line["event"] == "request" and line["timestamp"]
    assert line["method"] == "GET" and line["status"] == answer.status_code
    assert line["route"] == "/voices/{voice_id}/quote"  # the template: no ids, no query string
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert voice_id not in logs.text and "do-not-log" not in logs.text


@pytest.mark.parametrize("sent", ["x" * 65, "has space", "semi;colon", "ünïcode", ""])
def test_an_unusable_request_id_is_replaced_by_a_new_one(
    observed: RunningPlatform, sent: str, logs: Captured
) -> None:
    answer = observed.client().get("/v1/limits", headers={b"X-Request-Id": sent.encode()})
    request_id = answer.headers["x-request-id"]
    assert request_id != sent and 0 < len(request_id) <= 64
    assert wait_for(lambda: logs.access_line(request_id), timeout=5, what="the access line")["status"] == 200


def test_each_request_gets_its_own_id_also_when_the_guard_refuses_it(
    observed: RunningPlatform, logs: Captured
) -> None:
    client = observed.client()
    first, second = client.get("/v1/limits"), client.get("/v1/limits")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    refused = client.post(
        "/accounts", content=b"[" * 40 + b"]" * 40, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 422
    line = wait_for(
        lambda: logs.access_line(refused.headers["x-request-id"]), timeout=5, what="the access line"
    )
    assert line["status"] == 422 and line["route"] == "unmatched"


def test_a_bearer_key_never_reaches_the_logs_even_inside_an_error(
    observed: RunningPlatform, monkeypatch: pytest.MonkeyPatch, logs: Captured
) -> None:
    _, key = observed.sign_up()
    tail = key[len("vpk_") :]
    # A bug that puts the caller's header into an exception: its traceback is logged, the key must not be.
    _fails_once(monkeypatch, observed, f"boom with Authorization: Bearer {key}")
    monkeypatch.setattr(logging.getLogger("bentos.api.guard"), "disabled", False)
    client = observed.client(key)
    failed = client.get("/health", headers={"X-Request-Id": "leak-check"})
    assert failed.status_code == 500
    assert client.get("/accounts/me").status_code == 200
    error = wait_for(
        lambda: next((r for r in logs.lines() if r.get("level") == "error" and "exception" in r), None),
        timeout=5,
        what="the logged 500",
    )
    assert error["request_id"] == "leak-check" and "boom" in error["exception"]
    assert "[REDACTED]" in error["exception"]
    assert key not in logs.text and tail not in logs.text


def test_secrets_in_messages_fields_and_environment_are_redacted(
    monkeypatch: pytest.MonkeyPatch, logs: Captured
) -> None:
    step_key = "sk-" + secrets.token_hex(16)
    private_key = "0x" + secrets.token_hex(32)
    tx_hash = "0x" + secrets.token_hex(32)
    monkeypatch.setenv("STEP_API_KEY", step_key)
    log = logging.getLogger("bentos.test_observability")
    log.warning("provider said %s", f"key {step_key} refused")
    log.warning("signing with %s", private_key, extra={"intent_key": "register:p_1", "tx_hash": tx_hash})
    log.warning("headers", extra={"headers": {"Authorization": "Bearer abc.def", "Accept": "json"}})
    log.warning("env STEP_API_KEY=%s", "whatever-it-is")
    lines = logs.lines()
    assert step_key not in logs.text and private_key[2:] not in logs.text and "abc.def" not in logs.text
    assert "whatever-it-is" not in logs.text
    assert lines[1]["intent_key"] == "register:p_1" and lines[1]["tx_hash"] == tx_hash  # public hashes stay
    assert lines[2]["headers"] == {"Authorization": "[REDACTED]", "Accept": "json"}
    assert all(line["logger"] == "bentos.test_observability" and line["level"] == "warning" for line in lines)


# --- metrics ---------------------------------------------------------------------------------------------


def _scrape(running: RunningPlatform) -> dict[str, float]:
    text = running.client().get("/metrics").text
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True) * bool(sample.labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_report_requests_by_route_template_and_the_outbox_backlog_at_scrape_time(
    observed: RunningPlatform,
) -> None:
    observed.client().get("/v1/limits")
    before = _scrape(observed)
    assert before["voxpersona_reconciliation_mismatch_creators"] == 0
    assert before["stepfun_breaker_open"] == 0
    assert (
        "voxpersona_jobs_unfinished" in before and "voxpersona_jobs_oldest_unfinished_age_seconds" in before
    )
    route = 'voxpersona_http_requests_total{"method": "GET", "route": "/v1/limits", "status": "200"}'
    assert before[route] >= 1

    # The outbox dispatcher is not running here: an intent written now stays pending.
    with observed.platform.sessions() as session:
        Outbox.enqueue(
            session, "revoke", {"persona_id": "p_" + secrets.token_hex(6)}, f"revoke:{secrets.token_hex(4)}"
        )
        session.commit()
    after = _scrape(observed)
    assert after["voxpersona_outbox_backlog"] == before["voxpersona_outbox_backlog"] + 1
    assert after["voxpersona_outbox_oldest_pending_age_seconds"] >= 0
