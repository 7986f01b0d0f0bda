"""Schemathesis against the platform's own OpenAPI (scripts/fuzz_api.py; longer: `python -m scripts.fuzz_api
--max-examples N`), and regression checks for what the fuzzer found."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bentos.api.app import create_app
from bentos.api.views import AccountView
from bentos.core.accounts import Role
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform
from scripts.fuzz_api import fuzz, live_persona

FUZZ_EXAMPLES = 15  # per operation and generation mode: ~1,000 cases, well under a minute


@pytest.fixture(scope="module")
def fuzzed(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(platform_overrides(tmp_path_factory.mktemp("fuzz"), emulator))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(None).openapi()


@pytest.mark.slow
def test_schemathesis_finds_no_failure_on_any_operation(fuzzed: RunningPlatform) -> None:
    _, key = fuzzed.sign_up("creator", wallet="0x" + "ab" * 20)
    stats = fuzz(fuzzed.base_url, key, FUZZ_EXAMPLES, seed=0, voice_id=live_persona(fuzzed, key))
    failing = {s.operation: s.examples for s in stats if s.failures}
    assert not failing, failing
    assert len(stats) == len(list(_operations(create_app(None).openapi())))
    assert sum(s.cases for s in stats) > 500
    statuses = {status for s in stats for status in s.statuses}
    assert not {s for s in statuses if s >= 500}, statuses
    assert {200, 201, 400, 401, 404, 422} <= statuses  # past the refusals too: the live persona is spoken


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_error_statuses_are_documented_by_number(spec: dict[str, Any]) -> None:
    """Found by the fuzzer: 401/404/409/422/… were documented only as the `4XX` range."""
    for name, operation in _operations(spec):
        responses = operation["responses"]
        security = operation.get("security") or []
        if security:
            assert "401" in responses, name
        if "{" in name:
            assert "404" in responses, name
        queried = any(p["in"] == "query" for p in operation.get("parameters", []))
        if queried or operation.get("requestBody"):
            assert "422" in responses, name
        for status, response in responses.items():
            if status[0] in "45" and (name, status) != ("GET /health", "503"):  # health answers its view
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (name, status)
    statuses = {name: set(op["responses"]) for name, op in _operations(spec)}
    assert {"400", "409", "413", "422"} <= statuses["POST /accounts"]
    assert {"400", "401", "404", "409", "410", "422", "429", "451", "502", "503"} <= statuses["POST /tts"]
    assert {"413", "415"} <= statuses["POST /files"]


def test_routes_open_to_anyone_declare_the_key_optional(spec: dict[str, Any]) -> None:
    """Found by the fuzzer (ignored_auth): discovery answers without a key, yet OpenAPI required one."""
    paths = spec["paths"]
    optional = [
        paths["/voices"]["get"],
        paths["/voices/{voice_id}"]["get"],
        paths["/voices/{voice_id}/sample"]["get"],
        paths["/voices/{voice_id}/provenance"]["get"],
        paths["/voices/{voice_id}/quote"]["get"],
    ]
    for operation in optional:
        assert {} in operation["security"] and {"HTTPBearer": []} in operation["security"]
    assert paths["/accounts/me"]["get"]["security"] == [{"HTTPBearer": []}]


def test_values_the_server_checks_are_enums_in_the_schema(spec: dict[str, Any]) -> None:
    """Found by the fuzzer: schema-valid bodies refused as `invalid_request` (any string, any integer)."""
    schemas = spec["components"]["schemas"]
    assert schemas["OpenAISpeech"]["properties"]["response_format"]["enum"] == [
        "flac",
        "mp3",
        "opus",
        "pcm",
        "wav",
    ]
    speak = schemas["Speak"]["properties"]
    assert speak["sampleRate"]["anyOf"][0]["enum"] == [8000, 16000, 22050, 24000, 48000]
    assert "step-tts-2" in speak["model"]["anyOf"][0]["enum"]
    label = speak["voiceLabel"]["anyOf"][0]
    assert set(label["properties"]) == {"language", "emotion", "style"}
    assert label["additionalProperties"] is False and label["minProperties"] == label["maxProperties"] == 1


def test_times_carry_their_utc_offset() -> None:
    """Found by the fuzzer: the database's naive UTC times were written without an offset, which is not an
    RFC 3339 `date-time` (the response schema's format)."""
    naive = datetime(2026, 1, 2, 3, 4, 5)
    view = AccountView(
        id="a",
        name="n",
        email="e@example.com",
        role=Role.CREATOR,
        payout_wallet=None,
        created_at=naive,  # type: ignore[arg-type]
    )
    assert view.created_at == "2026-01-02T03:04:05+00:00"
    assert datetime.fromisoformat(str(view.created_at)).utcoffset() is not None


def test_an_unparsable_body_is_an_invalid_request() -> None:
    """Found by the fuzzer: a JSON body that is not UTF-8 answered 400 `http_error`, undocumented there."""
    client = TestClient(create_app(None))
    r = client.post(
        "/embeddings",
        content=b'{"fileId": "\xff"}',
        headers={"content-type": "application/json", "authorization": "Bearer vpk_x"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": "invalid_request",
            "message": "There was an error parsing the body",
            "retryable": False,
        }
    }
