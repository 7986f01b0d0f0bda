"""Security checks over the served platform: every bearer-secured operation refuses a missing or wrong key,
another account's resources stay out of reach, API keys and planted secrets never appear at rest (database dump,
log files) or in answers, and no route serves files by path. (Body-size limits: test_request_guard.py; headers and
CORS: their owners' tests.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform
from encoders.voices import VoiceSet

CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}
# The operations anyone may call without a key (and nothing else): a new route without auth fails here.
# A password reset is asked for and completed by someone who cannot sign in (the mailed token is the proof).
PUBLIC = {
    "POST /accounts",
    "GET /health",
    "GET /v1/limits",
    "POST /password-resets",
    "POST /password-resets/confirm",
}
FAKE_KEY = "vpk_PLANTEDfakeKEY0123456789abcdefSECRET"


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    return [
        (method.upper(), path, op.get("security", spec.get("security", [])))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x_1", path)


def _assert_envelope(r: httpx.Response, codes: set[str]) -> None:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "retryable"}, r.text
    assert body["error"]["code"] in codes, r.text


def test_every_operation_without_a_public_reason_demands_a_valid_key(
    platform_server: RunningPlatform,
) -> None:
    spec = httpx.get(f"{platform_server.base_url}/openapi.json").json()
    operations = _operations(spec)
    assert len(operations) >= 15
    unsecured = {f"{m} {p}" for m, p, security in operations if not security}
    assert unsecured == PUBLIC
    for method, path, security in operations:
        if not security:
            continue
        optional = {} in security
        for key, code in ((None, "unauthenticated"), (FAKE_KEY, "invalid_api_key")):
            if key is None and optional:
                continue  # works without a key; a wrong key is still refused below
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            r = httpx.request(method, platform_server.base_url + _concrete(path), headers=headers, json={})
            assert r.status_code == 401, (method, path, key, r.status_code, r.text)
            _assert_envelope(r, {code})
            assert FAKE_KEY not in r.text


def test_another_accounts_private_persona_job_and_upload_are_out_of_reach(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, owner = platform_server.sign_up("creator")
    _, other = platform_server.sign_up("creator")
    mine = platform_server.client(owner)
    up = mine.post("/files", files={"file": ("v.wav", voice_set.clips[4].wav_path.read_bytes())})
    assert up.status_code in (200, 201), up.text
    file_id = up.json()["fileId"]
    body = {"fileId": file_id, "name": "Private", "visibility": "private", "consent": CONSENT}
    started = mine.post("/voices", json=body)
    assert started.status_code == 202, started.text
    voice_id, job_id = started.json()["voiceId"], started.json()["jobId"]
    theirs = platform_server.client(other)
    attempts = {
        ("GET", f"/voices/{voice_id}"): {404},
        ("GET", f"/voices/{voice_id}/sample"): {404},
        ("GET", f"/voices/{voice_id}/provenance"): {404},
        ("GET", f"/voices/{voice_id}/quote?chars=10"): {404},
        ("DELETE", f"/voices/{voice_id}"): {403, 404},
        ("GET", f"/jobs/{job_id}"): {403, 404},
    }
    for (method, path), statuses in attempts.items():
        r = theirs.request(method, path)
        assert r.status_code in statuses, (method, path, r.status_code, r.text)
        _assert_envelope(r, {"not_found", "forbidden"})
    r = theirs.post("/embeddings", json={"fileId": file_id})
    assert r.status_code == 404, r.text
    r = theirs.post("/voices", json={**body, "name": "Stolen"})
    assert r.status_code == 404, r.text
    assert mine.get(f"/voices/{voice_id}").status_code == 200  # still there for its owner


def _database_text(running: RunningPlatform) -> str:
    """Every value of every table, and the SQL dump of the database when it is SQLite."""
    engine = running.platform.engine  # type: ignore[attr-defined]
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    parts.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            parts.extend(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
    return "\n".join(parts)


def _logs_text(running: RunningPlatform) -> str:
    data_dir = Path(str(running.platform.cfg.data_dir))
    logs = [p for p in data_dir.rglob("*") if p.is_file() and (p.suffix in {".log", ".txt", ".jsonl"})]
    return "\n".join(p.read_text(errors="replace") for p in logs)


def test_api_keys_and_planted_secrets_never_appear_at_rest_or_in_answers(
    platform_server: RunningPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = platform_server.sign_up("creator")
    rotated = platform_server.client(key).post("/accounts/me/keys").json()["apiKey"]
    answers: list[str] = []
    with caplog.at_level("DEBUG"):
        for k in (key, rotated, FAKE_KEY, None):
            client = platform_server.client(k)
            for path in ("/accounts/me", "/health", "/v1/limits", "/usage", "/voices", "/openapi.json"):
                answers.append(client.get(path).text)
            answers.append(client.post("/tts", json={"voice": "vc_missing", "text": FAKE_KEY}).text)
            answers.append(client.post("/voices", json={"fileId": FAKE_KEY, "name": "x"}).text)
    at_rest = _database_text(platform_server)
    logs = _logs_text(platform_server) + "\n".join(r.getMessage() for r in caplog.records)
    assert key[:12] in at_rest  # the dump is real: the key's prefix is stored, the key is not
    for secret in (key, rotated, FAKE_KEY, EMULATOR_KEY):
        assert secret not in at_rest, secret[:12]
        assert secret not in logs, secret[:12]
        assert not any(secret in a for a in answers), secret[:12]


@pytest.mark.parametrize(
    "path",
    [
        "/blobs/../../etc/passwd",
        "/blobs/%2e%2e/%2e%2e/etc/passwd",
        "/var/../etc/passwd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/files/..%2f..%2fetc%2fpasswd",
        "/voices/..%2f..%2f..%2fetc%2fpasswd/sample",
        "/data/blobs",
        "/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_no_route_serves_a_file_by_path(platform_server: RunningPlatform, path: str) -> None:
    _, key = platform_server.sign_up("creator")
    for client in (platform_server.client(), platform_server.client(key)):
        r = client.get(path)
        assert r.status_code in (404, 405, 422), (path, r.status_code)
        _assert_envelope(r, {"not_found", "method_not_allowed", "invalid_request"})
        assert "root:" not in r.text and "[project]" not in r.text


def test_a_stored_blob_is_not_reachable_by_its_content_address(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    client = platform_server.client(key)
    up = client.post("/files", files={"file": ("v.wav", voice_set.clips[5].wav_path.read_bytes())})
    assert up.status_code in (200, 201), up.text
    digest = up.json().get("sha256") or ""
    root = Path(str(getattr(platform_server.platform.blobs, "root", "")))
    stored = [p for p in root.rglob("*") if p.is_file()]
    assert stored
    for blob in stored[:3]:
        rel = blob.relative_to(root).as_posix()
        for path in (f"/{rel}", f"/blobs/{rel}", f"/files/{blob.name}", f"/files/{digest}"):
            r = client.get(path)
            assert r.status_code in (404, 405), (path, r.status_code)
            assert blob.read_bytes()[:64] not in r.content
