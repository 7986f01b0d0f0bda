"""A small in-memory stand-in for the platform HTTP API, served for real by uvicorn on a free loopback port.

It speaks the documented contract (shapes, error envelope, Bearer keys, Idempotency-Key) so the front end can
be tested before — and independently of — the real platform. The pipeline advances one step per
`GET /voices/{id}`; a persona whose name contains "doomed" fails at the clone step. `GET /v1/limits` serves
`FakePlatform.limits` (a test may change them, or set them to None to play a platform without the route), and
the fake enforces what it publishes; `GET /quotes` (and `GET /voices/{id}/quote`) and `POST /tts` share one price
function. Money works like the platform's: a trial credit at sign-up (`GET /balance`), a persona's price is a
multiplier of the model's list price (`priceMultiplierBps` within the published bounds), the clone fee is taken at
`POST /voices` and each call at `POST /tts` — `402 insufficient_balance` with `details.needed`/`available` when
short — and `GET /statements` serves the month's invoice (JSON or CSV) and a creator's earnings. Chat: a
persona's character, `POST /voices/{id}/chat`, the caller's conversations and a streamed `/v1/chat/completions`
(text deltas, then a WAV as audio deltas) that, like the platform, stores the turn in the `conversation` it names
(else in a new one).
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import io
import json
import secrets
import socket
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

TRIAL_CREDIT = 2_000_000  # ¥2, like the platform's default
CREATOR_SHARE_BPS = 7000  # the fake's split: 70 % to the creator, 20 % provider cost, 10 % platform margin
PROVIDER_COST_BPS = 2000

LIMITS: dict[str, Any] = {  # the shape of the platform's GET /v1/limits
    "tts": {
        "maxChars": 1000,
        "models": ["step-tts-mini", "step-tts-2", "stepaudio-2.5-tts"],
        "formats": ["wav", "mp3", "flac", "opus", "pcm"],
        "speed": {"min": 0.5, "max": 2.0},
        "volume": {"min": 0.1, "max": 2.0},
        "instructionMaxChars": 200,
        "instructionModels": ["stepaudio-2.5-tts"],
        "voiceLabels": {
            "language": ["粤语", "四川话", "日语"],
            "emotion": ["高兴", "悲伤", "生气"],
            "style": ["慢速", "快速", "温柔"],
        },
    },
    "upload": {
        "maxBytes": 20 * 1024 * 1024,
        "minSeconds": 5.0,
        "maxSeconds": 10.0,
        "formats": ["wav", "mp3"],
    },
    "persona": {
        "nameMaxChars": 80,
        "descriptionMaxChars": 2000,
        "promptMaxChars": 4000,
        "transcriptMaxChars": 1000,
        "sampleTextMaxChars": 50,
        "maxTags": 10,
        "tagMaxChars": 30,
        "languages": ["en", "zh"],
        "visibilities": ["public", "unlisted", "private"],
        "models": ["step-tts-mini", "step-tts-2", "stepaudio-2.5-tts"],
    },
    "prices": {
        "currency": "CNY",
        "unit": "micro",
        "microPerUnit": 1_000_000,
        "listPricePer10kChars": {
            "step-tts-mini": 1_800_000,
            "step-tts-2": 5_600_000,
            "stepaudio-2.5-tts": 11_600_000,
        },
        "creatorShareBps": 7000,
        "rounding": "up",
        "multiplierBpsMin": 5000,
        "multiplierBpsMax": 50000,
        "cloneFee": 500_000,
        "trialCredit": TRIAL_CREDIT,
    },
    "pipeline": {
        "states": ["uploaded", "validated", "embedded", "registered", "cloned", "previewed", "live"],
        "finalStates": ["live", "failed", "revoked"],
    },
    "chain": {"explorerUrl": None},
    "reports": {"reasons": ["impersonation", "offensive", "scam", "other"], "detailsMaxChars": 2000},
    "keys": {"scopes": ["full", "speech", "read"], "nameMaxChars": 60},
}
# Which labels each model takes, as the platform says (the tts2 styles only on step-tts-2).
_LABELS = {"language": ["粤语", "四川话", "日语"], "emotion": ["高兴", "悲伤", "生气"]}
LIMITS["tts"]["modelLabels"] = {
    "step-tts-mini": {**_LABELS, "style": ["慢速", "快速"]},
    "step-tts-2": {**_LABELS, "style": ["慢速", "快速", "温柔"]},
    "stepaudio-2.5-tts": {},
}
LIMITS["tts"]["labelGlosses"] = {"粤语": "Cantonese", "高兴": "happy", "温柔": "gentle", "慢速": "slow"}


def default_limits() -> dict[str, Any]:
    return copy.deepcopy(LIMITS)


def price(chars: int, unit_price: int) -> int:
    """The fake's one price function, like the platform's: micro-CNY, rounded up (no free calls)."""
    return -(-chars * unit_price // 10_000)


def unit_price(persona: dict[str, Any], model: str, list_prices: dict[str, int]) -> int:
    """The persona's price per 10k chars with `model`: its own model's is `pricePer10kChars` (tests may set it),
    another model's is that model's list price × the persona's multiplier."""
    if model == persona["model"]:
        return int(persona["pricePer10kChars"])
    return -(-list_prices[model] * persona["priceMultiplierBps"] // 10_000)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def tone_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A mono 16-bit WAV of `seconds` (a soft square-ish tone; content does not matter to the fake)."""
    frames = int(seconds * rate)
    pattern = (b"\x00\x10" * 20) + (b"\x00\xf0" * 20)
    data = (pattern * (frames // 40 + 1))[: frames * 2]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data)
    return buffer.getvalue()


class Refused(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retryable: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.code, self.message, self.retryable = status, code, message, retryable
        self.details = details


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakePlatform:
    """The state behind the fake API; tests read `requests` and seed personas with `add_live_persona`."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # api key → account id
    passwords: dict[str, str] = field(default_factory=dict)  # email → password (a fake: kept in clear)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    personas: dict[str, dict[str, Any]] = field(default_factory=dict)
    usage: list[dict[str, Any]] = field(default_factory=list)
    settlements: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str], tuple[str, int, Any]] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # account id → available micro-CNY
    requests: list[SeenRequest] = field(default_factory=list)
    limits: dict[str, Any] | None = field(default_factory=default_limits)  # None: no GET /v1/limits
    base_url: str = ""
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → {…, messages, _owner}
    characters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # persona id → versions
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_account(
        self, name: str, role: str = "creator", balance: int = TRIAL_CREDIT
    ) -> tuple[dict[str, Any], str]:
        account: dict[str, Any] = {
            "id": f"acc_{uuid.uuid4().hex[:12]}",
            "name": name,
            "email": f"{name.lower().replace(' ', '.')}@example.com",
            "role": role,
            "payoutWallet": None,
            "createdAt": now(),
        }
        key = f"vpk_{secrets.token_urlsafe(24)}"
        self.accounts[account["id"]] = account
        self.keys[key] = account["id"]
        self.balances[account["id"]] = balance
        return account, key

    def add_live_persona(self, creator_id: str, name: str, **fields: Any) -> dict[str, Any]:
        persona = self._persona(creator_id, {"name": name, "visibility": "public", **fields}, status="live")
        return persona

    def _persona(self, creator_id: str, body: dict[str, Any], status: str = "uploaded") -> dict[str, Any]:
        voice_id = f"voice_{uuid.uuid4().hex[:12]}"
        creator = self.accounts[creator_id]
        persona = {
            "id": voice_id,
            "name": body["name"],
            "description": body.get("description"),
            "personaPrompt": body.get("personaPrompt"),
            "tags": body.get("tags") or [],
            "language": body.get("language") or "en",
            "visibility": body.get("visibility") or "public",
            "status": status,
            "failure": None,
            "creator": {"id": creator["id"], "name": creator["name"]},
            "model": body.get("model") or "step-tts-mini",
            "sampleText": body.get("sampleText"),
            "sampleAudioUrl": f"/voices/{voice_id}/sample" if status == "live" else None,
            "priceMultiplierBps": int(body.get("priceMultiplierBps") or 10_000),
            "pricePer10kChars": int(
                body.get("pricePer10kChars")  # a test may set the price directly
                or -(
                    -LIMITS["prices"]["listPricePer10kChars"][body.get("model") or "step-tts-mini"]
                    * int(body.get("priceMultiplierBps") or 10_000)
                    // 10_000
                )
            ),
            "calls": int(body.get("calls", 0)),
            "createdAt": now(),
            "revokedAt": None,
            "embedding": {"encoder": "seeded", "version": "1", "pretrained": False, "hash": "0x" + "ab" * 32},
            "chain": {"status": "registered", "txHash": "0x" + "cd" * 32} if status == "live" else None,
            "_job": f"job_{uuid.uuid4().hex[:12]}",
        }
        self.personas[voice_id] = persona
        return persona


def public(persona: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in persona.items() if not k.startswith("_")}


def build_app(state: FakePlatform) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
        if exc.details:
            error["details"] = exc.details
        return JSONResponse({"error": error}, status_code=exc.status)

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        state.requests.append(SeenRequest(request.method, request.url.path, dict(request.headers)))
        return await call_next(request)

    def caller(request: Request, *, required: bool = True) -> dict[str, Any] | None:
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        account_id = state.keys.get(key)
        if account_id is None:
            if required or key:
                raise Refused(401, "unauthorized", "a valid API key is required")
            return None
        return state.accounts[account_id]

    def idempotent(request: Request, route: str, body: bytes, account_id: str, make: Any) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(body).hexdigest()
        if key and (key, account_id, route) in state.idempotency:
            stored_digest, status, stored = state.idempotency[(key, account_id, route)]
            if stored_digest != digest:
                raise Refused(409, "idempotency_conflict", "this Idempotency-Key was used with another body")
            return JSONResponse(stored, status_code=status)
        status, payload = make()
        if key:
            state.idempotency[(key, account_id, route)] = (digest, status, payload)
        return JSONResponse(payload, status_code=status)

    def charge(account_id: str, amount: int) -> None:
        """Take `amount` from the account's balance, or refuse with the platform's 402."""
        with state.lock:
            available = state.balances.get(account_id, 0)
            if amount > available:
                raise Refused(
                    402,
                    "insufficient_balance",
                    f"the balance ({available} micro-CNY) can't pay for this ({amount}); top up first",
                    details={"needed": amount, "available": available, "currency": "CNY"},
                )
            state.balances[account_id] = available - amount

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "provider": {"ok": True},
            "chain": {"ok": True},
            "db": {"ok": True},
            "queue": {},
        }

    def limit(section: str) -> dict[str, Any]:
        return (state.limits or LIMITS)[section]  # type: ignore[no-any-return]

    @app.get("/v1/limits")
    def limits() -> Any:
        if state.limits is None:  # a platform older than the route: what FastAPI answers for an unknown path
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return state.limits

    @app.post("/accounts")
    async def sign_up(request: Request) -> JSONResponse:
        raw = await request.body()
        body = json.loads(raw or b"{}")

        def make() -> tuple[int, Any]:
            if not body.get("name") or "@" not in str(body.get("email", "")):
                raise Refused(422, "invalid_request", "name and a valid email are required")
            if body.get("role") not in ("creator", "consumer"):
                raise Refused(422, "invalid_request", "role must be creator or consumer")
            account, key = state.new_account(body["name"], body["role"])
            account.update(email=body["email"], payoutWallet=body.get("payoutWallet"))
            if body.get("password"):
                state.passwords[body["email"]] = body["password"]
            return 201, {"account": account, "apiKey": key}

        return idempotent(request, "POST /accounts", raw, "-", make)

    @app.get("/accounts/me")
    def me(request: Request) -> dict[str, Any]:
        return caller(request) or {}

    @app.post("/sessions", status_code=201)
    async def sign_in(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body() or b"{}")
        if body.get("email"):
            found = [a for a in state.accounts.values() if a["email"] == body["email"]]
            if not found or state.passwords.get(body["email"]) != body.get("password"):
                raise Refused(401, "invalid_credentials", "the email or password is not right")
            account = found[0]
        else:
            account = caller(request)
            assert account is not None
        token = f"vps_{secrets.token_urlsafe(24)}"
        state.keys[token] = account["id"]
        return {"sessionToken": token, "expiresAt": None, "scope": "full", "account": account}

    @app.delete("/sessions/current")
    def sign_out(request: Request) -> dict[str, Any]:
        caller(request)
        state.keys.pop(request.headers["authorization"].removeprefix("Bearer ").strip(), None)
        return {"signedOut": True}

    @app.get("/accounts/me/keys")
    def keys(request: Request) -> list[dict[str, Any]]:
        account = caller(request)
        assert account is not None
        return [
            {
                "id": k[:12],
                "name": "",
                "prefix": k[:12],
                "scope": "full",
                "createdAt": now(),
                "revokedAt": None,
            }
            for k, owner in state.keys.items()
            if owner == account["id"] and k.startswith("vpk_")
        ]

    @app.post("/files")
    async def upload(request: Request, file: UploadFile = File(...)) -> JSONResponse:
        account = caller(request)
        assert account is not None
        content = await file.read()
        upload_limits = limit("upload")
        if len(content) > upload_limits["maxBytes"]:
            raise Refused(413, "file_too_large", f"the file is over {upload_limits['maxBytes']} bytes")
        if content.startswith(b"RIFF"):
            try:
                with wave.open(io.BytesIO(content)) as clip:
                    rate, channels = clip.getframerate(), clip.getnchannels()
                    duration = clip.getnframes() / rate
            except (wave.Error, EOFError) as exc:
                raise Refused(422, "corrupt_audio", f"the WAV data cannot be decoded ({exc})") from None
            fmt = "wav"
        elif content.startswith(b"ID3") or content[:2] in (b"\xff\xfb", b"\xff\xf3"):
            rate, channels, duration, fmt = 24_000, 1, 6.0, "mp3"
        else:
            raise Refused(415, "unsupported_format", "only WAV and MP3 audio are accepted")
        low, high = upload_limits["minSeconds"], upload_limits["maxSeconds"]
        if duration < low:
            raise Refused(
                422, "audio_too_short", f"the audio is {duration:.1f} s; at least {low:g} s is needed"
            )
        if duration > high:
            raise Refused(
                422, "audio_too_long", f"the audio is {duration:.1f} s; at most {high:g} s is accepted"
            )
        file_id = f"file_{uuid.uuid4().hex[:12]}"
        report = {
            "fileId": file_id,
            "duration": round(duration, 2),
            "sampleRate": rate,
            "channels": channels,
            "format": fmt,
            "hints": ["the recording is quiet; it was loudness-normalized"],
            "sha256": hashlib.sha256(content).hexdigest(),
            "impersonation": None,
        }
        state.files[file_id] = {"owner": account["id"], **report}
        return JSONResponse(report, status_code=201)

    @app.post("/voices")
    async def create_voice(request: Request) -> JSONResponse:
        account = caller(request)
        assert account is not None
        raw = await request.body()
        body = json.loads(raw or b"{}")

        def make() -> tuple[int, Any]:
            if body.get("fileId") not in state.files:
                raise Refused(404, "file_not_found", "upload the audio first")
            if not (body.get("consent") or {}).get("attested"):
                raise Refused(422, "consent_required", "the speaker's consent must be attested")
            if "pricePer10kChars" in body:
                raise Refused(422, "invalid_request", "pricePer10kChars is read-only: set priceMultiplierBps")
            prices = limit("prices")
            multiplier = int(body.get("priceMultiplierBps") or 10_000)
            if not prices["multiplierBpsMin"] <= multiplier <= prices["multiplierBpsMax"]:
                raise Refused(422, "invalid_persona", "priceMultiplierBps is out of bounds")
            charge(account["id"], prices["cloneFee"])
            persona = state._persona(account["id"], body)
            return 202, {"voiceId": persona["id"], "status": persona["status"], "jobId": persona["_job"]}

        return idempotent(request, "POST /voices", raw, account["id"], make)

    def visible(persona_id: str, account: dict[str, Any] | None) -> dict[str, Any]:
        persona = state.personas.get(persona_id)
        mine = account is not None and persona is not None and persona["creator"]["id"] == account["id"]
        if persona is None or (persona["visibility"] == "private" and not mine):
            raise Refused(404, "voice_not_found", "no such persona")
        return persona

    def advance(persona: dict[str, Any]) -> None:
        steps = limit("pipeline")["states"]
        if persona["status"] not in steps or persona["status"] == steps[-1]:
            return
        following = steps[steps.index(persona["status"]) + 1]
        if following == "cloned" and "doomed" in persona["name"].lower():
            persona["status"] = "failed"
            persona["failure"] = {
                "step": "cloned",
                "code": "provider_auth_failed",
                "message": "StepFun rejected the API key",
                "retryable": False,
            }
            return
        persona["status"] = following
        if following == "live":
            persona["sampleAudioUrl"] = f"/voices/{persona['id']}/sample"
            persona["chain"] = {"status": "registered", "txHash": "0x" + "cd" * 32}

    def searchable(p: dict[str, Any]) -> str:
        fields = (p["name"], p["description"], p["personaPrompt"], " ".join(p["tags"]), p["creator"]["name"])
        return " ".join(str(f or "") for f in fields).lower()

    @app.get("/voices")
    def discover(
        request: Request,
        q: str = "",
        tag: str = "",
        language: str = "",
        sort: str = "popular",
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        caller(request, required=False)
        found = [
            p
            for p in state.personas.values()
            if p["visibility"] == "public"
            and p["status"] == "live"
            and all(word in searchable(p) for word in q.lower().split())  # like the platform's full text
            and (not tag or tag.lower() in p["tags"])
            and (not language or p["language"] == language)
        ]
        found.sort(
            key=(lambda p: -p["calls"]) if sort == "popular" else (lambda p: p["createdAt"]), reverse=False
        )
        return {"data": [public(p) for p in found[offset : offset + limit]], "total": len(found)}

    @app.get("/voices/{voice_id}")
    def voice(voice_id: str, request: Request) -> dict[str, Any]:
        persona = visible(voice_id, caller(request, required=False))
        advance(persona)
        return public(persona)

    def quoted(persona: dict[str, Any], chars: int, model: str | None) -> dict[str, Any]:
        chosen = model or persona["model"]
        list_prices = limit("prices")["listPricePer10kChars"]
        if chosen not in list_prices:
            raise Refused(422, "invalid_request", f"model must be one of {sorted(list_prices)}")
        unit = unit_price(persona, chosen, list_prices)
        return {
            "voiceId": persona["id"],
            "chars": chars,
            "model": chosen,
            "unitPrice": unit,
            "amount": price(chars, unit),
            "currency": "CNY",
            "multiplierBps": persona["priceMultiplierBps"],
        }

    @app.get("/voices/{voice_id}/quote")
    def quote(voice_id: str, request: Request, chars: int = -1) -> dict[str, Any]:
        persona = visible(voice_id, caller(request, required=False))
        if chars < 0:
            raise Refused(400, "invalid_request", "chars must be a non-negative integer")
        return quoted(persona, chars, None)

    @app.get("/quotes")
    def quotes(request: Request, voice: str = "", chars: int = 0, model: str | None = None) -> dict[str, Any]:
        persona = visible(voice, caller(request, required=False))
        if not 1 <= chars <= limit("tts")["maxChars"]:
            raise Refused(422, "invalid_request", f"chars must be 1–{limit('tts')['maxChars']}")
        return quoted(persona, chars, model)

    @app.get("/voices/{voice_id}/sample")
    def sample(voice_id: str, request: Request) -> Response:
        persona = visible(voice_id, caller(request))
        if persona["status"] != "live":
            raise Refused(404, "sample_not_found", "no sample yet")
        return Response(tone_wav(1.0), media_type="audio/wav")

    @app.get("/voices/{voice_id}/provenance")
    def provenance(voice_id: str, request: Request) -> dict[str, Any]:
        persona = visible(voice_id, caller(request, required=False))
        status = {"live": "registered", "revoked": "revoked"}.get(persona["status"], "pending")
        record = {"personaId": voice_id, "creator": persona["creator"]["id"], "block": 7}
        return {"status": status, "embeddingHash": persona["embedding"]["hash"], "chainRecord": record}

    @app.delete("/voices/{voice_id}")
    def revoke(voice_id: str, request: Request) -> dict[str, Any]:
        account = caller(request)
        persona = visible(voice_id, account)
        if account is None or persona["creator"]["id"] != account["id"]:
            raise Refused(403, "forbidden", "only the creator can revoke a persona")
        persona.update(status="revoked", revokedAt=now(), sampleAudioUrl=None)
        return {"id": voice_id, "status": "revoked"}

    @app.get("/jobs/{job_id}")
    def job(job_id: str, request: Request) -> dict[str, Any]:
        caller(request)
        persona = next((p for p in state.personas.values() if p["_job"] == job_id), None)
        if persona is None:
            raise Refused(404, "job_not_found", "no such job")
        return {
            "id": job_id,
            "personaId": persona["id"],
            "state": persona["status"],
            "step": persona["status"],
            "attempts": 1,
            "failure": persona["failure"],
            "updatedAt": now(),
        }

    @app.post("/tts")
    async def tts(request: Request) -> Response:
        account = caller(request)
        assert account is not None
        body = json.loads(await request.body() or b"{}")
        persona = visible(str(body.get("voice")), account)
        if persona["status"] != "live":
            raise Refused(409, "voice_not_live", f"the persona is {persona['status']}")
        text = str(body.get("text") or "")
        max_chars = limit("tts")["maxChars"]
        if not 1 <= len(text) <= max_chars or not text.strip():
            raise Refused(400, "invalid_text", f"text must be 1–{max_chars} characters")
        request_id = f"req_{uuid.uuid4().hex[:12]}"
        chars = len(text)
        priced = quoted(persona, chars, body.get("model"))
        amount = priced["amount"]
        charge(account["id"], amount)  # 402 before the "provider" is called
        persona["calls"] += 1
        creator_share = amount * CREATOR_SHARE_BPS // 10_000
        state.usage.append(
            {
                "requestId": request_id,
                "personaId": persona["id"],
                "caller": account["id"],
                "creator": persona["creator"]["id"],
                "chars": chars,
                "audioSeconds": 1.0,
                "model": priced["model"],
                "unitPrice": priced["unitPrice"],
                "amount": amount,
                "providerCost": amount * PROVIDER_COST_BPS // 10_000,
                "creatorShare": creator_share,
                "platformShare": amount - creator_share,
                "createdAt": now(),
                "settled": False,
            }
        )
        headers = {"X-Request-Id": request_id, "X-Usage-Chars": str(chars)}
        return Response(tone_wav(1.0), media_type="audio/wav", headers=headers)

    @app.get("/usage")
    def usage(request: Request) -> dict[str, Any]:
        account = caller(request)
        assert account is not None
        mine = [u for u in state.usage if u["caller"] == account["id"]]
        earnings: dict[str, dict[str, Any]] = {}
        for u in state.usage:
            if u["creator"] != account["id"]:
                continue
            e = earnings.setdefault(
                u["personaId"],
                {
                    "personaId": u["personaId"],
                    "name": state.personas[u["personaId"]]["name"],
                    "calls": 0,
                    "chars": 0,
                    "amount": 0,
                    "creatorShare": 0,
                    "unsettled": 0,
                },
            )
            share = u["creatorShare"]
            e["calls"] += 1
            e["chars"] += u["chars"]
            e["amount"] += u["amount"]
            e["creatorShare"] += share
            e["unsettled"] += 0 if u["settled"] else share
        fields = ("requestId", "personaId", "chars", "audioSeconds", "model", "unitPrice", "amount")
        fields += ("providerCost", "creatorShare", "platformShare", "createdAt")
        return {
            "currency": "CNY",
            "unit": "micro",
            "totals": {
                "calls": len(mine),
                "chars": sum(u["chars"] for u in mine),
                "audioSeconds": sum(u["audioSeconds"] for u in mine),
                "amount": sum(u["amount"] for u in mine),
            },
            "calls": [{k: u[k] for k in fields} for u in mine],
            "earnings": list(earnings.values()),
        }

    @app.get("/balance")
    def balance(request: Request) -> dict[str, Any]:
        account = caller(request)
        assert account is not None
        earned = sum(u["creatorShare"] for u in state.usage if u["creator"] == account["id"])
        paid = sum(s["creatorAmount"] for s in state.settlements.values() if s["_owner"] == account["id"])
        return {
            "available": state.balances.get(account["id"], 0),
            "reserved": 0,
            "earnings": earned - paid,
            "currency": "CNY",
            "unit": "micro",
        }

    def month_statement(account: dict[str, Any], period: str) -> dict[str, Any]:
        mine = [u for u in state.usage if u["caller"] == account["id"] and u["createdAt"][:7] == period]
        lines = [
            {
                "date": u["createdAt"][:10],
                "requestId": u["requestId"],
                "personaId": u["personaId"],
                "persona": state.personas[u["personaId"]]["name"],
                "model": u["model"],
                "chars": u["chars"],
                "unitPrice": u["unitPrice"],
                "amount": u["amount"],
            }
            for u in mine
        ]
        totals = {"calls": len(mine), "chars": sum(u["chars"] for u in mine)}
        totals["amount"] = sum(u["amount"] for u in mine)
        earnings = None
        if account["role"] == "creator":
            days: dict[tuple[str, str], dict[str, Any]] = {}
            for u in state.usage:
                if u["creator"] != account["id"] or u["createdAt"][:7] != period:
                    continue
                key = (u["createdAt"][:10], u["personaId"])
                day = days.setdefault(
                    key,
                    {"date": key[0], "personaId": key[1], "persona": state.personas[key[1]]["name"]}
                    | dict.fromkeys(("calls", "chars", "gross", "creatorShare", "providerCost"), 0)
                    | {"platformShare": 0},
                )
                day["calls"] += 1
                day["chars"] += u["chars"]
                day["gross"] += u["amount"]
                day["creatorShare"] += u["creatorShare"]
                day["providerCost"] += u["providerCost"]
                day["platformShare"] += u["platformShare"]
            sums = ("calls", "chars", "gross", "creatorShare", "providerCost", "platformShare")
            earnings = {
                "days": sorted(days.values(), key=lambda d: (d["date"], d["personaId"])),
                "totals": {k: sum(d[k] for d in days.values()) for k in sums},
                "settlements": [
                    {
                        "settlementId": s["settlementId"],
                        "createdAt": s["createdAt"],
                        "confirmedAt": None,
                        "usageCount": s["usageCount"],
                        "amount": s["amount"],
                        "creatorAmount": s["creatorAmount"],
                        "status": s["status"],
                        "txHash": s["txHash"],
                    }
                    for s in state.settlements.values()
                    if s["_owner"] == account["id"] and s["createdAt"][:7] == period
                ],
            }
        return {
            "period": period,
            "currency": "CNY",
            "unit": "micro",
            "accountId": account["id"],
            "invoice": {"lines": lines, "totals": totals},
            "earnings": earnings,
        }

    @app.get("/statements")
    def statements(request: Request, period: str = "", format: str = "json", part: str = "invoice") -> Any:
        account = caller(request)
        assert account is not None
        if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
            raise Refused(422, "invalid_request", "period must be YYYY-MM")
        body = month_statement(account, period)
        if format == "json":
            return body
        earnings = body["earnings"] or {}
        rows = {
            "invoice": body["invoice"]["lines"],
            "earnings": earnings.get("days"),
            "settlements": earnings.get("settlements"),
        }.get(part)
        if rows is None:
            raise Refused(403, "forbidden", "only creators have earnings and settlements")
        out = io.StringIO()
        columns = list(rows[0]) if rows else ["date", "requestId", "amount"]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        name = f"voxpersona-{period}-{part}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.post("/settlements")
    async def settle(request: Request) -> JSONResponse:
        account = caller(request)
        assert account is not None
        raw = await request.body()

        def make() -> tuple[int, Any]:
            rows = [u for u in state.usage if u["creator"] == account["id"] and not u["settled"]]
            amount = sum(u["creatorShare"] for u in rows)
            if amount <= 0:
                raise Refused(409, "nothing_to_settle", "there are no unsettled earnings")
            for u in rows:
                u["settled"] = True
            settlement = {  # like the platform's: `amount` is what callers paid, the creator gets their share
                "settlementId": f"stl_{uuid.uuid4().hex[:12]}",
                "amount": sum(u["amount"] for u in rows),
                "status": "pending",
                "txHash": None,
                "creatorAmount": amount,
                "payoutWallet": account["payoutWallet"] or "0x" + "ab" * 20,
                "weiAmount": str(amount * 10**9),
                "usageCount": len(rows),
                "createdAt": now(),
                "_owner": account["id"],
            }
            state.settlements[settlement["settlementId"]] = settlement
            return 201, public(settlement)

        return idempotent(request, "POST /settlements", raw, account["id"], make)

    @app.get("/settlements")
    def settlements(request: Request) -> dict[str, Any]:
        account = caller(request)
        assert account is not None
        return {"data": [public(s) for s in state.settlements.values() if s["_owner"] == account["id"]]}

    @app.get("/settlements/{settlement_id}")
    def settlement(settlement_id: str, request: Request) -> dict[str, Any]:
        account = caller(request)
        found = state.settlements.get(settlement_id)
        if found is None or account is None or found["_owner"] != account["id"]:
            raise Refused(404, "settlement_not_found", "no such settlement")
        found.update(status="confirmed", txHash="0x" + "ef" * 32)
        return public(found)

    add_chat_routes(app, state, caller, visible, charge)
    return app


# --- talking with a persona ------------------------------------------------------------------------------------

CHAT_TURN_PRICE = 1_000  # the fake's chat part of a turn (micro-CNY); the spoken part is priced like /tts


def fake_reply(persona: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """Like the emulator's stand-in: names the persona, quotes the last user turn, counts earlier messages."""
    last = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
    earlier = sum(1 for m in messages[:-1] if m.get("role") in ("user", "assistant"))
    return f"{persona['name']} here. You said: “{last}”. I remember {earlier} earlier messages of ours."


def add_chat_routes(app: FastAPI, state: FakePlatform, caller: Any, visible: Any, charge: Any) -> None:
    """The chat routes: character, POST /voices/{id}/chat, conversations, streamed /v1/chat/completions."""

    def character(persona: dict[str, Any]) -> dict[str, Any]:
        versions = state.characters.setdefault(persona["id"], [])
        if not versions:
            versions.append(
                {
                    "version": 0,
                    "personaPrompt": persona.get("personaPrompt"),
                    "greeting": None,
                    "emotion": None,
                    "style": None,
                    "language": persona["language"],
                    "createdAt": now(),
                }
            )
        return versions[-1]

    def shown(persona: dict[str, Any], account: dict[str, Any] | None) -> dict[str, Any]:
        current = {k: v for k, v in character(persona).items() if v is not None}  # like the platform
        if account is None or persona["creator"]["id"] != account["id"]:
            current.pop("personaPrompt", None)
        return current

    @app.get("/voices/{voice_id}/character")
    def get_character(voice_id: str, request: Request) -> dict[str, Any]:
        account = caller(request, required=False)
        return shown(visible(voice_id, account), account)

    @app.patch("/voices/{voice_id}/character")
    async def edit_character(voice_id: str, request: Request) -> dict[str, Any]:
        account = caller(request)
        persona = visible(voice_id, account)
        if persona["creator"]["id"] != account["id"]:
            raise Refused(403, "forbidden", "only the persona's creator can edit its character")
        changes = json.loads(await request.body() or b"{}")
        if changes.get("emotion") and changes.get("style"):
            raise Refused(422, "invalid_persona", "one label at a time: an emotion or a style")
        edited = {**character(persona), **changes, "createdAt": now()}
        edited["version"] = character(persona)["version"] + 1
        state.characters[voice_id].append(edited)
        return shown(persona, account)

    def turn(
        account: dict[str, Any], persona: dict[str, Any], messages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Price and charge one turn (402 before anything is said) → its reply and usage."""
        if persona["status"] != "live":
            raise Refused(409, "voice_not_live", f"the persona is {persona['status']}")
        reply = fake_reply(persona, messages)
        tts_amount = price(len(reply), int(persona["pricePer10kChars"]))
        charge(account["id"], CHAT_TURN_PRICE + tts_amount)
        usage = {
            "requestId": f"chat_{uuid.uuid4().hex[:12]}",
            "promptTokens": sum(len(str(m.get("content") or "").split()) for m in messages),
            "completionTokens": len(reply.split()),
            "chatAmount": CHAT_TURN_PRICE,
            "ttsChars": len(reply),
            "ttsAmount": tts_amount,
            "amount": CHAT_TURN_PRICE + tts_amount,
        }
        return {"reply": reply, "usage": usage, "characterVersion": character(persona)["version"]}

    def store(
        account: dict[str, Any], persona: dict[str, Any], source: str, conversation_id: str | None, user: str,
        answer: dict[str, Any],
    ) -> str:  # fmt: skip
        conversation = state.conversations.get(conversation_id or "")
        if conversation is None:
            conversation_id = f"conv_{uuid.uuid4().hex[:12]}"
            conversation = state.conversations[conversation_id] = {
                "id": conversation_id,
                "personaId": persona["id"],
                "persona": persona["name"],
                "source": source,
                "createdAt": now(),
                "messages": [],
                "_owner": account["id"],
                "_active": 0.0,
            }
        seq = len(conversation["messages"])
        version = answer["characterVersion"]
        conversation["messages"] += [
            {"seq": seq, "role": "user", "content": user, "characterVersion": version, "createdAt": now()},
            {
                "seq": seq + 1,
                "role": "assistant",
                "content": answer["reply"],
                "characterVersion": version,
                "createdAt": now(),
                "usage": answer["usage"],
            },
        ]
        conversation["updatedAt"], conversation["_active"] = now(), time.monotonic()
        return str(conversation["id"])

    def summary(c: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in c.items() if not k.startswith("_") and k != "messages"}
        return {**body, "turns": len(c["messages"]), "lastTurn": c["messages"][-1] if c["messages"] else None}

    def own(conversation_id: str, account: dict[str, Any]) -> dict[str, Any]:
        found = state.conversations.get(conversation_id)
        if found is None or found["_owner"] != account["id"]:
            raise Refused(404, "not_found", f"conversation {conversation_id} not found")
        return found

    @app.post("/voices/{voice_id}/chat")
    async def chat(voice_id: str, request: Request) -> dict[str, Any]:
        account = caller(request)
        persona = visible(voice_id, account)
        body = json.loads(await request.body() or b"{}")
        history = own(body["conversation"], account)["messages"] if body.get("conversation") else []
        message = str(body.get("message") or "")
        answer = turn(account, persona, [*history, {"role": "user", "content": message}])
        conversation_id = store(account, persona, "chat", body.get("conversation"), message, answer)
        audio = base64.b64encode(tone_wav(0.5)).decode() if body.get("audio") else None
        return {"conversation": conversation_id, "audio": audio, "spoken": answer["reply"], **answer}

    @app.get("/conversations")
    def conversations(request: Request) -> dict[str, Any]:
        account = caller(request)
        mine = [c for c in state.conversations.values() if c["_owner"] == account["id"]]
        return {"data": [summary(c) for c in sorted(mine, key=lambda c: -c["_active"])]}

    @app.get("/conversations/{conversation_id}")
    def conversation(conversation_id: str, request: Request) -> dict[str, Any]:
        found = own(conversation_id, caller(request))
        return {**summary(found), "messages": found["messages"]}

    @app.delete("/conversations/{conversation_id}")
    def forget(conversation_id: str, request: Request) -> dict[str, Any]:
        own(conversation_id, caller(request))
        del state.conversations[conversation_id]
        return {"id": conversation_id, "deleted": True}

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        """Streamed only (what the front end uses): words as text deltas, then a WAV in two audio deltas."""
        account = caller(request)
        body = json.loads(await request.body() or b"{}")
        persona = visible(str(body.get("model")), account)
        messages = list(body.get("messages") or [])
        if not messages or messages[-1].get("role") != "user" or not body.get("stream"):
            raise Refused(422, "invalid_request", "the fake streams a turn ending in the user's message")
        answer = turn(account, persona, messages)
        joined = str(body["conversation"]) if body.get("conversation") else None
        if joined is not None:
            own(joined, account)  # another caller's conversation is a 404, as on the platform
        stored = store(account, persona, "openai", joined, str(messages[-1]["content"]), answer)
        head = {"id": f"chatcmpl-{answer['usage']['requestId']}", "object": "chat.completion.chunk"}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return f"data: {json.dumps({**head, 'choices': [choice], **extra})}\n\n".encode()

        def events() -> Iterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            words = answer["reply"].split(" ")
            for i, word in enumerate(words):
                yield chunk({"content": word + (" " if i < len(words) - 1 else "")})
            if body.get("audio"):
                audio = tone_wav(0.5, rate=24_000)
                for part in (audio[:44], audio[44:]):  # a header, then PCM: one file once joined
                    yield chunk({"audio": {"id": "audio_1", "data": base64.b64encode(part).decode()}})
            yield chunk({}, "stop", voxpersona={**answer["usage"], "conversation": stored})
            yield b"data: [DONE]\n\n"

        headers = {"X-Request-Id": answer["usage"]["requestId"]}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


class FakePlatformServer:
    """uvicorn serving `build_app` in a background thread on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.state = FakePlatform()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.base_url = self.state.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(build_app(self.state), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake platform did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
