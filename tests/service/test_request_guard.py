"""RequestGuard: bodies are bounded before anything decodes them, an upload is authenticated before it is read,
and a 500 leaves the keep-alive connection usable (probes that killed or stalled the API before)."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bentos.api.guard import JSON_BODY_LIMIT, MAX_JSON_DEPTH, MULTIPART_ALLOWANCE, json_depth
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform
from bentos.devkit.processes import free_port, terminate, wait_ready
from bentos.store.models import StoredFile

MiB = 1 << 20
UPLOAD_LIMIT = 2 * MiB  # server.max_upload_bytes of this module's platform
# What the kernel may hold between the client's generator and the server process (socket buffers, loopback).
SOCKET_SLACK = 16 * MiB
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def guarded(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    overrides = platform_overrides(tmp_path_factory.mktemp("guard"), emulator)
    running = start_platform([*overrides, f"server.max_upload_bytes={UPLOAD_LIMIT}"], start_jobs=False)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def own_process(
    emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The platform in a process of its own: a request that kills it fails the test, not the test run."""
    port = free_port()
    overrides = platform_overrides(tmp_path_factory.mktemp("proc"), emulator)
    cmd = [sys.executable, "-m", "bentos.devkit.platform_proc", str(port), *overrides]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health", proc, timeout_s=120, what="the platform process")
        yield f"http://127.0.0.1:{port}", proc
    finally:
        terminate(proc)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _random_json(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.2:
        return "".join(rng.choice('ab[]{}"\\/\n,:') for _ in range(rng.randint(0, 6)))
    items = [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return items if rng.random() < 0.5 else {s: v for s, v in zip(("[", "}\\", '"{'), items, strict=False)}


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{{", "b": ["\\"]]]", "\\\\", [[]]]}', 4),  # brackets and escaped quotes in strings
        (b'["\\\\"[[[', 4),  # an escaped backslash ends the string: the brackets after it count
        (b'["unterminated [[[[[[', 1),  # a decoder stops at the open string
        (b'"\\', 0),
    ],
)
def test_json_depth_ignores_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_json_depth_matches_the_decoded_depth() -> None:
    rng = random.Random(7)
    for _ in range(500):
        doc = _random_json(rng, rng.randint(0, 8))
        assert json_depth(json.dumps(doc).encode()) == _depth(doc), doc


@pytest.mark.parametrize(
    "body",
    [
        b"[" * JSON_BODY_LIMIT,
        b"[" * (JSON_BODY_LIMIT // 2) + b"]" * (JSON_BODY_LIMIT // 2),
        b'"\\"' * (JSON_BODY_LIMIT // 3),  # many short strings: the slowest input for the string regex
        b'"' + b"\\a" * (JSON_BODY_LIMIT // 2),  # one unterminated string
    ],
)
def test_json_depth_is_linear_on_the_largest_body(body: bytes) -> None:
    start = time.perf_counter()
    json_depth(body)
    assert time.perf_counter() - start < 0.1  # ~2–15 ms on one core


def _nested(depth: int, **fields: Any) -> bytes:
    """{"name": [[[…]]], …} with `depth` arrays, as the probe sent it."""
    rest = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items())
    return b'{"name": ' + b"[" * depth + b"]" * depth + rest.encode() + b"}"


@pytest.mark.parametrize("path", ["/accounts", "/tts", "/v1/audio/speech"])
def test_deeply_nested_json_is_refused_and_the_server_keeps_answering(
    own_process: tuple[str, subprocess.Popen[bytes]], path: str
) -> None:
    base_url, proc = own_process
    with httpx.Client(base_url=base_url, headers={"content-type": "application/json"}, timeout=30) as client:
        for depth, status, code in [
            (100_000, 422, "invalid_request"),  # 200 KB: killed the process before
            (MAX_JSON_DEPTH + 1, 422, "invalid_request"),
            (200_000, 413, "request_too_large"),  # 400 KB
        ]:
            r = client.post(path, content=_nested(depth, email="a@b.co"))
            assert r.status_code == status, (depth, r.text)
            error = r.json()["error"]
            assert r.json() == {"error": {"code": code, "message": error["message"], "retryable": False}}
            if status == 422:
                assert error["message"] == f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            assert client.get("/health").status_code == 200
    assert proc.poll() is None


def test_json_at_the_depth_limit_and_brackets_in_strings_pass_the_guard(guarded: RunningPlatform) -> None:
    client = guarded.client()
    r = client.post("/accounts", content=_nested(MAX_JSON_DEPTH - 1, email="a@b.co"))
    assert r.status_code == 422 and "nested deeper" not in r.json()["error"]["message"]  # the schema's answer
    name = '[[[[{{{{ "quoted" \\ ' * 3
    r = client.post("/accounts", json={"name": name, "email": "brackets@example.com", "role": "consumer"})
    assert r.status_code == 201, r.text


class _Metered:
    """Counts the body bytes the platform's ASGI app pulled from the server."""

    def __init__(self, app: Any) -> None:
        self.app, self.read = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def metered() -> Any:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, metered, send)


@pytest.fixture
def metered(guarded: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> _Metered:
    app = guarded.server.config.app
    assert guarded.client().get("/health").status_code == 200  # builds the middleware stack
    meter = _Metered(app.middleware_stack)
    monkeypatch.setattr(app, "middleware_stack", meter)
    return meter


def _upload(
    guarded: RunningPlatform, key: str | None, total_mib: int, chunked: bool = True
) -> tuple[Any, int]:
    """POST /files with a multipart body of `total_mib` MiB, streamed 1 MiB at a time → (response or the
    transport error, MiB the generator handed to the socket before the server answered or closed)."""
    sent = 0
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(total_mib):
            sent += 1
            yield b"\0" * MiB
        yield b"\r\n--b--\r\n"

    headers = {"content-type": "multipart/form-data; boundary=b"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    if not chunked:
        headers["content-length"] = str(len(head) + total_mib * MiB + 9)
    try:
        result: Any = httpx.post(f"{guarded.base_url}/files", content=body(), headers=headers, timeout=60)
    except httpx.TransportError as err:
        result = err
    return result, sent


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_upload_over_the_limit_is_cut_off_at_the_limit(
    guarded: RunningPlatform, metered: _Metered, chunked: bool
) -> None:
    _, key = guarded.sign_up("creator")
    metered.read = 0
    r, sent = _upload(guarded, key, 64, chunked)
    assert isinstance(r, httpx.Response), r
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large", r.text
    assert metered.read <= UPLOAD_LIMIT + MULTIPART_ALLOWANCE + MiB
    assert sent * MiB <= UPLOAD_LIMIT + SOCKET_SLACK  # all 64 MiB before
    assert r.headers["connection"] == "close"  # the server stops reading the rest
    assert guarded.client().get("/health").status_code == 200


@pytest.mark.parametrize("key", [None, "vpk_not-a-real-key"], ids=["anonymous", "bad-key"])
def test_an_upload_without_a_valid_key_is_refused_before_its_body_is_read(
    guarded: RunningPlatform, metered: _Metered, key: str | None
) -> None:
    r, sent = _upload(guarded, key, 64)
    assert isinstance(r, httpx.Response), r
    assert r.status_code == 401 and r.json()["error"]["code"] in ("unauthenticated", "invalid_api_key")
    assert metered.read <= MiB
    assert sent * MiB <= SOCKET_SLACK  # all 64 MiB before


def test_two_file_fields_are_ambiguous(guarded: RunningPlatform) -> None:
    _, key = guarded.sign_up("creator")
    with guarded.platform.sessions() as session:
        before = session.scalar(select(func.count()).select_from(StoredFile))
    files = [
        ("file", ("a.wav", b"RIFF" + bytes(100), "audio/wav")),
        ("file", ("b.mp3", b"ID3", "audio/mpeg")),
    ]
    r = guarded.client(key).post("/files", files=files)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "error": {"code": "ambiguous_upload", "message": r.json()["error"]["message"], "retryable": False}
    }
    r = guarded.client(key).post("/files", files={"other": ("a.wav", b"RIFF")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    with guarded.platform.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StoredFile)) == before


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_500_leaves_the_keep_alive_connection_usable(
    guarded: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = guarded.platform.provider_health
    real, calls = health.as_dict, []

    def fails_once() -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom: an unexpected bug")
        return real()

    monkeypatch.setattr(health, "as_dict", fails_once)
    local_ports: list[int] = []

    def note_port(response: httpx.Response) -> None:
        local_ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    client = guarded.client()
    client.event_hooks["response"] = [note_port]
    # A library's logging.config call earlier in the run may have disabled loggers that already existed, or
    # changed what reaches the root logger: listen on the guard's own logger.
    guard_log = logging.getLogger("bentos.api.guard")
    monkeypatch.setattr(guard_log, "disabled", False)
    monkeypatch.setattr(guard_log, "level", logging.NOTSET)
    heard = _Records()
    guard_log.addHandler(heard)
    try:
        first = client.get("/health")
    finally:
        guard_log.removeHandler(heard)
    assert first.status_code == 500
    assert first.json() == {
        "error": {"code": "internal_error", "message": first.json()["error"]["message"], "retryable": True}
    }
    assert "boom" not in first.text
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in heard.records)  # logged, with the trace
    for _ in range(2):
        assert client.get("/health").status_code == 200
    assert len(local_ports) == 3 and len(set(local_ports)) == 1  # one connection throughout
