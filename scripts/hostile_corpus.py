"""A generated corpus of hostile uploads and requests, sent to the real platform over HTTP: each case states the
status and error code it must get, and afterwards nothing may be stored (rows of every table that a request can
write, files in the blob folder), unless the case is valid by design (SQL or HTML as a name is just a name): then
it says which tables may grow and checks the strings come back verbatim, as data.

    .venv/bin/python -m scripts.hostile_corpus [--json OUT] [--base-url URL --api-key KEY]

Without --base-url it starts the platform in process (the StepFun emulator, SQLite, the job queue, uvicorn on
loopback; the body idle timeout lowered to SLOW_BODY_TIMEOUT_S) and counts rows and blob files directly. Against
a running platform (--api-key: a creator's key) it can only count what the API shows (the key's own personas and
usage), and the slow-loris cases wait for that server's own timeout. Prints a table (case, expected, got,
stored-nothing, pass) and writes {"cases", "passed", "failed", "server_5xx"} to --json
(default var/reliability/corpus.json). tests/service/test_hostile_corpus.py runs the same cases.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf
import soxr
from sqlalchemy import func, select

from bentos.api import guard
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform
from bentos.store import models
from encoders.voices import DEFAULT_CACHE, make_voices
from scripts.bench_common import print_table

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "var" / "reliability" / "corpus.json"
SLOW_BODY_TIMEOUT_S = 2.0  # the in-process platform's body idle timeout (the default is 30 s)
# Every table a request can write, by what the cases call it.
TABLES: dict[str, type] = {
    "accounts": models.Account,
    "api_keys": models.ApiKey,
    "files": models.StoredFile,
    "blobs": models.BlobRow,
    "personas": models.Persona,
    "jobs": models.Job,
    "usage": models.UsageEvent,
    "settlements": models.Settlement,
}
SQL = "Robert'); DROP TABLE personas;-- ' OR '1'='1"
HTML = '<script>alert("x")</script><img src=x onerror=alert(1)>'
CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}
Check = Callable[["Target", httpx.Response], str | None]


@dataclass(frozen=True)
class Case:
    """One hostile request and what it must get. `stores`: the tables it may grow (valid by design); `check`:
    what else the answer must show (None: fine, else the problem)."""

    name: str
    method: str
    path: str
    status: int
    code: str | None  # the error code; None for an accepted request
    who: str = "creator"  # creator | consumer | anonymous | bad-key
    body: dict[str, Any] = field(default_factory=dict)  # httpx.request keyword arguments
    stores: tuple[str, ...] = ()
    check: Check | None = None
    slow_loris: bytes | None = None  # the head of a body that promises more and then stops


@dataclass
class Target:
    """The platform under test: its URL, keys, an uploaded file, and how to count what is stored."""

    base_url: str
    creator_key: str
    consumer_key: str
    file_id: str
    speech: bytes  # 5–10 s of speech, WAV
    running: RunningPlatform | None = None
    body_timeout_s: float = guard.BODY_IDLE_TIMEOUT_S
    made: dict[str, str] = field(default_factory=dict)

    def key(self, who: str) -> str | None:
        return {"creator": self.creator_key, "consumer": self.consumer_key, "bad-key": "vpk_' OR 1=1 --"}.get(
            who
        )

    def counts(self) -> dict[str, int]:
        if self.running is None:  # another server: only what the API shows
            with httpx.Client(base_url=self.base_url, headers=_auth(self.creator_key), timeout=30) as c:
                mine = c.get("/voices", params={"limit": 100}).json()["data"]
                usage = c.get("/usage").json()
            return {"personas": len(mine), "usage": len(json.dumps(usage))}
        platform = self.running.platform
        with platform.sessions() as session:
            rows = {
                name: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in TABLES.items()
            }
        root = Path(getattr(platform.blobs, "root", "/nonexistent"))
        rows["blob files"] = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
        return rows


@dataclass
class Outcome:
    case: Case
    status: int | None
    code: str | None
    grew: list[str]
    problem: str | None

    @property
    def passed(self) -> bool:
        return self.problem is None

    def row(self) -> dict[str, Any]:
        return {
            "case": self.case.name,
            "expected": f"{self.case.status} {self.case.code or 'ok'}",
            "got": f"{self.status} {self.code or ('ok' if self.status and self.status < 400 else '-')}",
            "stored-nothing": "yes" if not self.grew else ("by design: " + ",".join(self.grew)),
            "pass": "PASS" if self.passed else "FAIL: " + str(self.problem)[:80],
        }


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


# --- generated audio ----------------------------------------------------------------------------------------


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _with_rate(wav: bytes, rate: int) -> bytes:
    """The same WAV with a forged sample rate (and matching byte rate) in its fmt chunk."""
    data = bytearray(wav)
    align = struct.unpack_from("<H", data, 32)[0]
    struct.pack_into("<II", data, 24, rate, rate * align)
    return bytes(data)


def _riff(fmt: bytes, data_size: int, data: bytes, riff_size: int | None = None) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size)
    size = riff_size if riff_size is not None else len(body) + len(data)
    return b"RIFF" + struct.pack("<I", size) + body + data


def _pcm16_fmt(rate: int = 16000, channels: int = 1) -> bytes:
    return struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)


def _flac_bomb() -> bytes:
    """A FLAC STREAMINFO claiming 2^36 - 1 samples at 655 350 Hz, 8 channels (≈ 29 h of 8-channel audio)."""
    rate, channels, bits, total = 655350, 8, 24, (1 << 36) - 1
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | total
    info = struct.pack(">HH", 4096, 4096) + b"\0\0\x10\0\xff\xff" + packed.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info + bytes(64)


def _multipart(name: str, data: bytes, mime: str = "audio/wav") -> dict[str, Any]:
    return {"files": {"file": (name, data, mime)}}


def audio_cases(speech_wav: bytes) -> list[Case]:
    speech, rate = sf.read(io.BytesIO(speech_wav), dtype="float32")
    rng = np.random.default_rng(13)

    def fresh(
        scale: float,
    ) -> np.ndarray:  # distinct bytes per accepted upload (an identical one answers 200)
        return (speech * scale).astype(np.float32)

    seven_s = np.resize(speech, rate * 7).astype(np.float32)
    nan = seven_s.copy()
    nan[1000:1010] = np.nan
    inf = seven_s.copy()
    inf[5000] = np.inf
    odd_rate = 44101  # gcd(44101, 16000) = 1: torchaudio's kernel alone would be 2.8 GB
    odd = soxr.resample(fresh(0.93), rate, odd_rate).astype(np.float32)
    four_gb = _riff(_pcm16_fmt(), 0xFFFFFFF0, bytes(4096), riff_size=0xFFFFFFF8)
    up = "/files"

    def filename_kept_safe(target: Target, r: httpx.Response) -> str | None:
        if target.running is None:
            return None
        with target.running.platform.sessions() as session:
            stored = session.scalar(
                select(models.StoredFile.name).where(models.StoredFile.id == r.json()["fileId"])
            )
        if not stored or any(c in stored for c in "/\\\0\u202e") or ".." in stored:
            return f"stored file name {stored!r} is not sanitized"
        return None

    def mono(a: np.ndarray) -> np.ndarray:
        return a[:, 0] if a.ndim > 1 else a

    return [
        Case("wav: header only, truncated", "POST", up, 422, "corrupt_audio", body=_multipart("a.wav", speech_wav[:30])),
        Case("wav: cut mid-data", "POST", up, 422, "corrupt_audio", body=_multipart("a.wav", speech_wav[: len(speech_wav) // 3])),
        Case("wav: header claims 4 GB of data", "POST", up, 422, "corrupt_audio", body=_multipart("bomb.wav", four_gb)),
        Case("wav: fmt chunk claims 4 GB", "POST", up, 422, "corrupt_audio",
             body=_multipart("a.wav", b"RIFF\xff\xff\xff\xffWAVEfmt \xf0\xff\xff\xff" + bytes(64))),
        Case("wav: no data chunk", "POST", up, 422, "corrupt_audio",
             body=_multipart("a.wav", b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0" + _pcm16_fmt())),
        Case("wav: 1 Hz sample rate", "POST", up, 415, "unsupported_format",
             body=_multipart("a.wav", _riff(struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16), 14, bytes(14)))),
        Case("wav: 10 MHz sample rate", "POST", up, 415, "unsupported_format",
             body=_multipart("a.wav", _with_rate(_wav(np.resize(mono(speech), 6 * 10**6 // 8), 16000, "PCM_U8"), 10**7))),
        Case("wav: 1 999 993 Hz (256 GB resampler kernel)", "POST", up, 415, "unsupported_format",
             body=_multipart("a.wav", _with_rate(_wav(np.resize(mono(speech), 12 * 10**6), 16000, "PCM_U8"), 1999993))),
        Case("wav: speech at an odd rate, 44 101 Hz", "POST", up, 201, None, stores=("files", "blobs", "blob files"),
             body=_multipart("odd.wav", _wav(odd, odd_rate))),
        Case("wav: 9 channels", "POST", up, 422, "corrupt_audio",
             body=_multipart("a.wav", _wav(np.tile(seven_s[:, None] if seven_s.ndim == 1 else seven_s[:, :1], 9), rate))),
        Case("wav: float with NaN samples", "POST", up, 422, "corrupt_audio", body=_multipart("nan.wav", _wav(nan, rate, "FLOAT"))),
        Case("wav: float with Inf samples", "POST", up, 422, "corrupt_audio", body=_multipart("inf.wav", _wav(inf, rate, "FLOAT"))),
        Case("wav: 7 s of silence", "POST", up, 422, "no_speech", body=_multipart("s.wav", _wav(np.zeros(16000 * 7, np.float32), 16000))),
        Case("wav: 7 s of white noise", "POST", up, 422, "no_speech",
             body=_multipart("n.wav", _wav((rng.standard_normal(16000 * 7) * 0.3).astype(np.float32), 16000))),
        Case("empty file", "POST", up, 422, "corrupt_audio", body=_multipart("empty.wav", b"")),
        Case("flac: truncated header", "POST", up, 415, "unsupported_format", body=_multipart("a.flac", b"fLaC\0\0\0\x22", "audio/flac")),
        Case("flac: claims 29 h × 8 channels", "POST", up, 415, "unsupported_format", body=_multipart("bomb.flac", _flac_bomb(), "audio/flac")),
        Case("mp3: ID3 tag then nothing", "POST", up, 422, "corrupt_audio", body=_multipart("a.mp3", b"ID3\x04\0\0\0\0\0\x10" + bytes(6), "audio/mpeg")),
        Case("mp3: frame sync then garbage", "POST", up, 422, "corrupt_audio",
             body=_multipart("a.mp3", b"\xff\xfb\x90\x64" + rng.integers(0, 256, 20000, np.uint8).tobytes(), "audio/mpeg")),
        Case("ogg: truncated page", "POST", up, 415, "unsupported_format", body=_multipart("a.ogg", b"OggS\0\x02" + bytes(20), "audio/ogg")),
        Case("png named .wav", "POST", up, 415, "unsupported_format", body=_multipart("a.wav", b"\x89PNG\r\n\x1a\n" + bytes(100))),
        Case("file name: path traversal", "POST", up, 201, None, stores=("files", "blobs", "blob files"),
             body=_multipart("../../../../etc/passwd", _wav(fresh(0.91), rate)), check=filename_kept_safe),
        Case("file name: RTL override, NUL, unicode", "POST", up, 201, None, stores=("files", "blobs", "blob files"),
             body=_multipart("\u202egnp.exe\0\u0645\u0631\u062d\u0628\u0627..\\..\\x.wav", _wav(fresh(0.89), rate)),
             check=filename_kept_safe),
        Case("file name: SQL and HTML", "POST", up, 201, None, stores=("files", "blobs", "blob files"),
             body=_multipart(SQL + HTML + ".wav", _wav(fresh(0.87), rate)), check=filename_kept_safe),
        Case("upload over the size limit", "POST", up, 413, "file_too_large",
             body=_multipart("big.wav", b"RIFF" + bytes(20 * 2**20 + 2**20))),
        Case("JSON to the multipart route", "POST", up, 422, "invalid_request", body={"json": {"file": "AAAA"}}),
        Case("text/plain to the multipart route", "POST", up, 422, "invalid_request",
             body={"content": b"RIFF....WAVE", "headers": {"content-type": "text/plain"}}),
        Case("multipart without a file field", "POST", up, 422, "invalid_request", body={"files": {"other": ("a.wav", speech_wav)}}),
        Case("upload as a consumer", "POST", up, 201, None, who="consumer", stores=("files", "blobs", "blob files"),
             body=_multipart("c.wav", _wav(fresh(0.85), rate))),
        Case("upload with a forged key", "POST", up, 401, "invalid_api_key", who="bad-key", body=_multipart("a.wav", speech_wav)),
        Case("slow-loris upload", "POST", up, 408, "invalid_request",
             slow_loris=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'),
    ]  # fmt: skip


# --- JSON routes --------------------------------------------------------------------------------------------


def _verbatim(*fields: str) -> Check:
    """The sign-up answer carries each sent field unchanged, as JSON data."""

    def check(target: Target, r: httpx.Response) -> str | None:
        if not r.headers.get("content-type", "").startswith("application/json"):
            return f"answered as {r.headers.get('content-type')}"
        sent = json.loads(r.request.content)
        account = r.json()["account"]
        for f in fields:
            if account.get(f) != sent[f]:
                return f"{f} came back as {account.get(f)!r}"
        return None

    return check


def _persona_verbatim(target: Target, r: httpx.Response) -> str | None:
    """GET /voices/{id} gives back every hostile string exactly as sent, as JSON (never rendered)."""
    sent = json.loads(r.request.content)
    voice_id = r.json()["voiceId"]
    target.made["persona"] = voice_id
    with httpx.Client(base_url=target.base_url, headers=_auth(target.creator_key), timeout=30) as c:
        got = c.get(f"/voices/{voice_id}")
    if not got.headers.get("content-type", "").startswith("application/json"):
        return f"answered as {got.headers.get('content-type')}"
    detail = got.json()
    for sent_key, got_key in (("name", "name"), ("description", "description"), ("tags", "tags")):
        if detail.get(got_key) != sent[sent_key]:
            return f"{got_key} came back as {detail.get(got_key)!r}"
    if sent["personaPrompt"] not in _strings(detail):
        return "the persona prompt did not come back verbatim"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _last_key_wins(target: Target, r: httpx.Response) -> str | None:
    return None if r.json()["account"]["name"] == "second" else f"name is {r.json()['account']['name']!r}"


def _empty(target: Target, r: httpx.Response) -> str | None:
    return None if r.json()["data"] == [] else "a page past the end is not empty"


def _price_is(price: int) -> Check:
    def check(target: Target, r: httpx.Response) -> str | None:
        with httpx.Client(base_url=target.base_url, headers=_auth(target.creator_key), timeout=30) as c:
            got = c.get(f"/voices/{r.json()['voiceId']}").json().get("priceMultiplierBps")
        return None if got == price else f"price came back as {got!r}"

    return check


def _no_others(target: Target, r: httpx.Response) -> str | None:
    data = r.json()["data"]
    return None if all(p["id"] for p in data) and len(data) <= 100 else "an odd page"


def json_cases() -> list[Case]:
    def signup(**extra: Any) -> dict[str, Any]:
        return {"name": "Hostile", "email": f"h{time.monotonic_ns()}@example.com", "role": "creator", **extra}

    def voice(**extra: Any) -> dict[str, Any]:
        return {"fileId": "{file}", "name": "Probe", "visibility": "private", "consent": CONSENT, **extra}

    deep: Any = "x"
    for _ in range(200):
        deep = {"a": [deep]}
    big = {"name": "x", "email": "a@example.com", "pad": "x" * (300 * 1024)}
    return [
        Case("sign-up: SQL in the name", "POST", "/accounts", 201, None, who="anonymous",
             body={"json": signup(name=SQL[:60])}, stores=("accounts", "api_keys"), check=_verbatim("name")),
        Case("sign-up: HTML in the name", "POST", "/accounts", 201, None, who="anonymous",
             body={"json": signup(name=HTML[:60])}, stores=("accounts", "api_keys"), check=_verbatim("name")),
        Case("sign-up: SQL in the email", "POST", "/accounts", 422, "invalid_email", who="anonymous",
             body={"json": signup(email="x@example.com' OR '1'='1")}),
        # Accepted today (the address check allows <, >, ( and ) in the local part): kept as data, verbatim.
        Case("sign-up: HTML in the email", "POST", "/accounts", 422, "invalid_email", who="anonymous",
             body={"json": signup(email=f"<script>alert({time.monotonic_ns()})</script>@example.com")}),
        Case("sign-up: SQL in the wallet", "POST", "/accounts", 422, "invalid_wallet", who="anonymous",
             body={"json": signup(payoutWallet="0x' OR 1=1 --")}),
        Case("sign-up: unknown field isAdmin", "POST", "/accounts", 422, "invalid_request", who="anonymous",
             body={"json": signup(isAdmin=True)}),
        Case("sign-up: role admin", "POST", "/accounts", 422, "invalid_request", who="anonymous", body={"json": signup(role="admin")}),
        Case("sign-up: name as a number", "POST", "/accounts", 422, "invalid_request", who="anonymous", body={"json": signup(name=12345)}),
        Case("sign-up: duplicate keys, last wins", "POST", "/accounts", 201, None, who="anonymous", stores=("accounts", "api_keys"),
             body={"content": b'{"name": "first", "name": "second", "email": "dup%d@example.com"}' % time.monotonic_ns(),
                   "headers": {"content-type": "application/json"}}, check=_last_key_wins),
        Case("sign-up: invalid UTF-8", "POST", "/accounts", 400, "invalid_request", who="anonymous",
             body={"content": b'{"name": "\xff\xfe\xc3", "email": "u@example.com"}', "headers": {"content-type": "application/json"}}),
        Case("sign-up: multipart body", "POST", "/accounts", 422, "invalid_request", who="anonymous",
             body={"files": {"name": ("n", b"x")}, "data": {"email": "m@example.com"}}),
        Case("sign-up: text/plain body", "POST", "/accounts", 422, "invalid_request", who="anonymous",
             body={"content": json.dumps(signup()).encode(), "headers": {"content-type": "text/plain"}}),
        Case("sign-up: JSON array", "POST", "/accounts", 422, "invalid_request", who="anonymous", body={"json": [signup()]}),
        Case("sign-up: over 256 KiB", "POST", "/accounts", 413, "request_too_large", who="anonymous", body={"json": big}),
        Case("sign-up: nested 200 deep", "POST", "/accounts", 422, "invalid_request", who="anonymous", body={"json": deep}),
        Case("sign-up: name over its limit", "POST", "/accounts", 422, "invalid_request", who="anonymous",
             body={"json": signup(name="A" * 5000)}),
        Case("persona: SQL fileId", "POST", "/voices", 404, "not_found", body={"json": voice(fileId="' OR 1=1 --")}),
        Case("persona: traversal fileId", "POST", "/voices", 404, "not_found", body={"json": voice(fileId="../../etc/passwd")}),
        # Pydantic's lax mode takes a numeric string for an integer: accepted by design.
        Case("persona: price as a numeric string", "POST", "/voices", 202, None, stores=("personas", "jobs"),
             body={"json": voice(name="Numeric", priceMultiplierBps="20000")}, check=_price_is(20000)),
        Case("persona: negative price", "POST", "/voices", 422, "invalid_request", body={"json": voice(priceMultiplierBps=-1)}),
        Case("persona: price 10^30", "POST", "/voices", 422, "invalid_request", body={"json": voice(priceMultiplierBps=10**30)}),
        Case("persona: HTML in a tag", "POST", "/voices", 422, "invalid_persona", body={"json": voice(tags=["<b>x</b>"])}),
        Case("persona: consent as a string", "POST", "/voices", 422, "invalid_request", body={"json": voice(consent="yes")}),
        Case("persona: unknown field", "POST", "/voices", 422, "invalid_request", body={"json": voice(creatorId="acc_x")}),
        Case("persona: as a consumer", "POST", "/voices", 403, "forbidden", who="consumer", body={"json": voice()}),
        # Accepted: its pipeline may already have stored the preview sample by the time the rows are counted.
        Case("persona: SQL+HTML in every field", "POST", "/voices", 202, None,
             stores=("personas", "jobs", "blobs", "blob files"),
             body={"json": voice(name=(SQL + HTML)[:60], description=SQL + HTML, personaPrompt=HTML + SQL,
                                 tags=["drop table--", "x- -y"])}, check=_persona_verbatim),
        Case("discover: SQL in q", "GET", "/voices", 200, None, who="anonymous",
             body={"params": {"q": "' OR 1=1 --", "tag": "<script>"}}, check=_no_others),
        Case("discover: limit as text", "GET", "/voices", 422, "invalid_request", body={"params": {"limit": "ten"}}),
        Case("discover: negative offset", "GET", "/voices", 422, "invalid_request", body={"params": {"offset": -5}}),
        Case("discover: offset 10^25", "GET", "/voices", 422, "invalid_request", body={"params": {"offset": 10**25}}),
        Case("discover: limit 10^25", "GET", "/voices", 422, "invalid_request", body={"params": {"limit": 10**25}}),
        Case("voice id: encoded traversal", "GET", "/voices/..%2F..%2Fetc%2Fpasswd", 404, "not_found"),
        Case("voice id: SQL", "GET", "/voices/' OR 1=1 --", 404, "not_found"),
        Case("tts: text over the 40 000-char schema cap", "POST", "/tts", 422, "invalid_request",
             body={"json": {"voice": "vc_missing", "text": "a" * 40_001}}),
        Case("tts: 1 MB of text", "POST", "/tts", 413, "request_too_large",
             body={"json": {"voice": "vc_missing", "text": "a" * 2**20}}),
        Case("tts: SQL voice id", "POST", "/tts", 404, "not_found", body={"json": {"voice": SQL, "text": "hello"}}),
        Case("tts: HTML text to an unknown voice", "POST", "/tts", 404, "not_found",
             body={"json": {"voice": "vc_missing", "text": HTML}}),
        Case("tts: speed as a string", "POST", "/tts", 422, "invalid_request",
             body={"json": {"voice": "vc_missing", "text": "hi", "speed": "fast"}}),
        Case("tts: multipart body", "POST", "/tts", 422, "invalid_request", body={"files": {"text": ("t", b"hello")}}),
        Case("tts: anonymous", "POST", "/tts", 401, "unauthenticated", who="anonymous",
             body={"json": {"voice": "vc_missing", "text": "hi"}}),
        Case("openai speech: SQL model", "POST", "/v1/audio/speech", 404, "not_found",
             body={"json": {"model": SQL[:60], "input": "hi", "voice": "vc_missing"}}),
        Case("embeddings: SQL fileId", "POST", "/embeddings", 404, "not_found", body={"json": {"fileId": SQL[:60]}}),
        Case("idempotency key of 10 000 chars", "POST", "/voices", 400, "invalid_idempotency_key",
             body={"json": voice(), "headers": {"Idempotency-Key": "k" * 10_000}}),
        # The route takes no body: a forged amount is ignored, the caller's own (empty) earnings are settled.
        Case("settlement: a forged amount", "POST", "/settlements", 422, "payout_wallet_missing",
             body={"json": {"amount": -10**9, "accountId": "acc_other"}}),
        Case("slow-loris JSON body", "POST", "/accounts", 408, "invalid_request", who="anonymous", slow_loris=b'{"name": "sl'),
    ]  # fmt: skip


def all_cases(speech_wav: bytes) -> list[Case]:
    """Every case, the ones that may leave background work (personas) last."""
    cases = audio_cases(speech_wav) + json_cases()
    return sorted(cases, key=lambda c: "personas" in c.stores)


# --- running ------------------------------------------------------------------------------------------------


def _fill(value: Any, target: Target) -> Any:
    if isinstance(value, str):
        return value.replace("{file}", target.file_id)
    if isinstance(value, dict):
        return {k: _fill(v, target) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, target) for v in value]
    return value


def _error_code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return None


def _envelope_problem(r: httpx.Response) -> str | None:
    if r.status_code < 400:
        return None
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:80]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict) and set(body) == {"error"} and set(error) == {"code", "message", "retryable"}
    ):
        return f"not the error envelope: {r.text[:80]!r}"
    return None


def slow_loris(target: Target, case: Case) -> tuple[int | None, str | None, float]:
    """Send the head, promise 64 KiB more, trickle `case.slow_loris` a byte every 0.2 s, then stop sending.
    → (status or None if the server just closed, error code, seconds the server took once we stopped)."""
    host, port = target.base_url.removeprefix("http://").split(":")
    head = [f"{case.method} {case.path} HTTP/1.1", f"Host: {host}", "Content-Length: 65536"]
    key = target.key(case.who)
    if key:
        head.append(f"Authorization: Bearer {key}")
    ctype = "multipart/form-data; boundary=b" if case.path == "/files" else "application/json"
    head.append(f"Content-Type: {ctype}")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for byte in case.slow_loris or b"":
            sock.sendall(bytes([byte]))
            time.sleep(0.2)  # the hostile client's pace, not a wait for the server
        stopped = time.monotonic()
        # Others are served while this request hangs.
        if httpx.get(f"{target.base_url}/health", timeout=10).status_code != 200:
            return None, "others not served", 0.0
        sock.settimeout(target.body_timeout_s + 15)
        raw = b""
        try:
            while b"\r\n\r\n" not in raw or len(raw) < raw.index(b"\r\n\r\n") + 4 + _length(raw):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        except TimeoutError:
            return None, "hung", time.monotonic() - stopped
    took = time.monotonic() - stopped
    if not raw:
        return None, None, took
    status = int(raw.split(b" ", 2)[1])
    body = raw.split(b"\r\n\r\n", 1)[1]
    try:
        return status, str(json.loads(body)["error"]["code"]), took
    except (ValueError, KeyError, TypeError):
        return status, None, took


def _length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def run_case(target: Target, case: Case) -> Outcome:
    before = target.counts()
    status: int | None
    problem: str | None = None
    if case.slow_loris is not None:
        status, code, took = slow_loris(target, case)
        if code in ("hung", "others not served"):
            problem = f"{code} ({took:.1f} s)"
        elif took > target.body_timeout_s + 10:
            problem = f"answered after {took:.1f} s, timeout is {target.body_timeout_s:g} s"
    else:
        with httpx.Client(base_url=target.base_url, headers=_auth(target.key(case.who)), timeout=120) as c:
            r = c.request(case.method, case.path, **_fill(case.body, target))
        status, code = r.status_code, _error_code(r)
        problem = _envelope_problem(r)
        if problem is None and status == case.status and case.check is not None:
            problem = case.check(target, r)
    after = target.counts()
    grew = [name for name in after if after[name] != before.get(name)]
    if problem is None and (status, code) != (case.status, case.code):
        problem = f"expected {case.status} {case.code}, got {status} {code}"
    unexpected = [name for name in grew if name not in case.stores]
    if problem is None and unexpected:
        problem = f"stored something: {', '.join(unexpected)}"
    return Outcome(case, status, code, grew, problem)


def run_corpus(target: Target) -> list[Outcome]:
    return [run_case(target, case) for case in all_cases(target.speech)]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "cases": len(outcomes),
        "passed": sum(o.passed for o in outcomes),
        "failed": [{"case": o.case.name, "problem": o.problem} for o in outcomes if not o.passed],
        "server_5xx": sum(1 for o in outcomes if o.status is not None and o.status >= 500),
        "accepted_by_design": [o.case.name for o in outcomes if o.case.stores],
    }


def speech_wav() -> bytes:
    """5–10 s of generated speech as WAV (the cached test voices)."""
    return make_voices(DEFAULT_CACHE, speakers=6, utterances=3).clips[2].wav_path.read_bytes()


def prepare(base_url: str, creator_key: str, running: RunningPlatform | None = None) -> Target:
    """A consumer account and one accepted upload of the creator's, for the cases that need them."""
    wav = speech_wav()
    consumer = httpx.post(
        f"{base_url}/accounts",
        json={"name": "Corpus consumer", "email": f"corpus-{time.monotonic_ns()}@example.com"},
        timeout=30,
    )
    consumer.raise_for_status()
    up = httpx.post(
        f"{base_url}/files", files={"file": ("v.wav", wav)}, headers=_auth(creator_key), timeout=120
    )
    up.raise_for_status()
    timeout = guard.BODY_IDLE_TIMEOUT_S
    return Target(
        base_url, creator_key, consumer.json()["apiKey"], up.json()["fileId"], wav, running, timeout
    )


@contextmanager
def local_target(state: Path) -> Iterator[Target]:
    """The platform in process on the emulator, its body idle timeout lowered to SLOW_BODY_TIMEOUT_S."""
    guard.BODY_IDLE_TIMEOUT_S = SLOW_BODY_TIMEOUT_S
    with EmulatorProcess(
        state / "emulator", api_keys=(EMULATOR_KEY,), rpm=0, concurrency=64, max_candidates=4
    ) as emu:
        running = start_platform(platform_overrides(state / "platform", emu))
        try:
            _, key = running.sign_up("creator")
            yield prepare(running.base_url, key, running)
        finally:
            running.stop()


def report(outcomes: list[Outcome], out: Path) -> dict[str, Any]:
    print_table("hostile corpus", [o.row() for o in outcomes])
    result = summary(outcomes)
    print(f"\n{result['cases']} cases, {result['passed']} passed, {result['server_5xx']} answered 5xx")
    for failure in result["failed"]:
        print(f"  FAILED {failure['case']}: {failure['problem']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"results written to {out}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_OUT, help="where to write the summary")
    parser.add_argument("--base-url", help="a running platform (default: start one in process)")
    parser.add_argument("--api-key", help="a creator's API key on --base-url")
    args = parser.parse_args()
    if args.base_url:
        if not args.api_key:
            parser.error("--base-url needs --api-key (a creator's)")
        outcomes = run_corpus(prepare(args.base_url.rstrip("/"), args.api_key))
    else:
        with tempfile.TemporaryDirectory() as tmp, local_target(Path(tmp)) as target:
            outcomes = run_corpus(target)
    result = report(outcomes, args.json)
    raise SystemExit(0 if not result["failed"] else 1)


if __name__ == "__main__":
    main()
