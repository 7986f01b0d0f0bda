"""A small typed client for the VoxPersona platform HTTP API: one method per route, one error type.

Every non-2xx answer becomes an `ApiError(status, code, message)` built from the platform's error envelope
`{"error": {"code", "message", "retryable"}}`; a platform that cannot be reached is `ApiError(0, ...)`.
Every POST carries an `Idempotency-Key` (a fresh one unless the caller passes its own, so a retried click
can reuse it). The API key never appears in `repr()`/`str()` of the client.

The contract's facts (text and upload limits, the models, formats and labels on offer, the pipeline's states,
prices) are not repeated here: `limits()` reads them from `GET /v1/limits`, and `quote()` asks the platform's
one price function what a call will cost.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast, get_type_hints, is_typeddict
from urllib.parse import quote as url_quote

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:3000"

Role = Literal["creator", "consumer"]


class Account(TypedDict):
    id: str
    name: str
    email: str
    role: str
    payoutWallet: str | None
    createdAt: str


class SignUp(TypedDict):
    account: Account
    apiKey: str | None  # None on a replayed sign-up: the key is shown once


class SignedIn(TypedDict):
    """`POST /sessions`: a session token (`vps_…`) with a fixed expiry."""

    sessionToken: str | None
    expiresAt: str | None
    scope: str
    account: Account


class ApiKeyInfo(TypedDict):
    id: str
    name: str
    prefix: str
    scope: str  # full | speech | read
    createdAt: str
    revokedAt: str | None


class IssuedKey(TypedDict):
    apiKey: str  # shown once
    key: ApiKeyInfo


class Impersonation(TypedDict):
    personaId: str
    name: str
    cosine: float


class FileIntake(TypedDict):
    fileId: str
    duration: float
    sampleRate: int
    channels: int
    format: str
    hints: list[str]
    sha256: str
    impersonation: Impersonation | None


class VoiceCreated(TypedDict):
    voiceId: str
    status: str
    jobId: str


class Failure(TypedDict):
    step: str
    code: str
    message: str
    retryable: bool


class Creator(TypedDict):
    id: str
    name: str | None


class EmbeddingInfo(TypedDict):
    encoder: str
    version: str
    pretrained: bool
    hash: str


class ChainInfo(TypedDict):
    status: str
    txHash: str | None


class Persona(TypedDict):
    """A persona; `failure`, `embedding`, `chain` and the prompt are shown to its creator only."""

    id: str
    name: str
    description: str | None
    tags: list[str]
    language: str
    visibility: str
    status: str
    creator: Creator
    model: str
    sampleText: str | None
    sampleAudioUrl: str | None
    pricePer10kChars: int  # read-only display: the persona's own model at its multiplier
    calls: int
    createdAt: str
    revokedAt: str | None
    priceMultiplierBps: NotRequired[int]
    personaPrompt: NotRequired[str | None]
    failure: NotRequired[Failure | None]
    embedding: NotRequired[EmbeddingInfo | None]
    chain: NotRequired[ChainInfo | None]
    notices: NotRequired[list[str] | None]


class PersonaPage(TypedDict):
    data: list[Persona]
    total: int


class Provenance(TypedDict):
    status: str
    embeddingHash: str | None
    chainRecord: NotRequired[dict[str, Any] | None]  # the documented name
    chain: NotRequired[dict[str, Any] | None]  # what the platform sends today


class Revoked(TypedDict):
    id: str
    status: str


class UsageTotals(TypedDict):
    calls: int
    chars: int
    audioSeconds: float
    amount: int


class UsageCall(TypedDict):
    requestId: str
    personaId: str
    chars: int
    audioSeconds: float
    model: str
    amount: int
    createdAt: str
    unitPrice: NotRequired[int]
    providerCost: NotRequired[int]
    creatorShare: NotRequired[int]
    platformShare: NotRequired[int]


class Earning(TypedDict):
    personaId: str
    name: str
    calls: int
    chars: int
    amount: int
    creatorShare: int
    unsettled: int


class Usage(TypedDict):
    currency: str
    unit: str
    totals: UsageTotals
    calls: list[UsageCall]
    earnings: list[Earning]


class Settlement(TypedDict):
    settlementId: str
    amount: int
    status: str
    txHash: str | None
    creatorAmount: NotRequired[int]
    usageCount: NotRequired[int]
    createdAt: NotRequired[str | None]
    payoutWallet: NotRequired[str]
    weiAmount: NotRequired[str]
    confirmedAt: NotRequired[str | None]


class Job(TypedDict):
    id: str
    personaId: str
    state: str | None
    step: NotRequired[str | None]
    attempts: int
    failure: Failure | None
    updatedAt: str


class Health(TypedDict):
    status: str
    provider: dict[str, Any]
    chain: dict[str, Any]
    db: dict[str, Any]
    queue: dict[str, Any]


class Consent(TypedDict):
    attested: bool
    statement: str


class VoiceLabel(TypedDict, total=False):
    emotion: str
    style: str
    language: str


class Range(TypedDict):
    min: float
    max: float


class _LabelsByModel(TypedDict, total=False):  # optional: a platform older than them omits both
    modelLabels: dict[str, dict[str, list[str]]]  # model → kind → the values that model takes
    labelGlosses: dict[str, str]  # label value (a Chinese word) → its English meaning


class TtsLimits(_LabelsByModel):
    maxChars: int
    models: list[str]
    formats: list[str]
    speed: Range
    volume: Range
    instructionMaxChars: int
    instructionModels: list[str]  # these take `instruction`; the others take a voice label
    voiceLabels: dict[str, list[str]]  # kind (language, emotion, style) → the values allowed


class UploadLimits(TypedDict):
    maxBytes: int
    minSeconds: float
    maxSeconds: float
    formats: list[str]


class PersonaLimits(TypedDict):
    nameMaxChars: int
    descriptionMaxChars: int
    promptMaxChars: int
    transcriptMaxChars: int
    sampleTextMaxChars: int
    maxTags: int
    tagMaxChars: int
    languages: list[str]
    visibilities: list[str]
    models: list[str]


class Prices(TypedDict):
    currency: str
    unit: str
    microPerUnit: int
    listPricePer10kChars: dict[str, int]
    creatorShareBps: int
    rounding: str
    multiplierBpsMin: int  # the price multipliers a creator may set (10000 = the list price)
    multiplierBpsMax: int
    cloneFee: int  # held from the creator's balance when a persona is created
    trialCredit: NotRequired[int]


class PipelineLimits(TypedDict):
    states: list[str]  # the steps in order, the last one "live"
    finalStates: list[str]


class ChainLinks(TypedDict):
    explorerUrl: str | None  # `<url>/tx/<hash>`; None on a chain no explorer indexes


class ReportLimits(TypedDict):
    reasons: list[str]
    detailsMaxChars: int


class KeyLimits(TypedDict):
    scopes: list[str]
    nameMaxChars: int


class _ChainPart(TypedDict, total=False):  # optional: a platform older than it omits it
    chain: ChainLinks
    reports: ReportLimits
    keys: KeyLimits


class Limits(_ChainPart):
    """`GET /v1/limits`: every limit, choice and state the UI shows, as the platform enforces them."""

    tts: TtsLimits
    upload: UploadLimits
    persona: PersonaLimits
    prices: Prices
    pipeline: PipelineLimits


class Quote(TypedDict):
    """`GET /quotes?voice=&model=&chars=N`: what a call of N characters costs, in integer micro-units."""

    voiceId: str
    chars: int
    model: str
    unitPrice: int
    amount: int
    currency: str
    multiplierBps: NotRequired[int]


class Balance(TypedDict):
    """`GET /balance`: what the caller can spend, what is held for calls in flight, unpaid earnings."""

    available: int
    reserved: int
    currency: str
    unit: str
    earnings: NotRequired[int]


class InvoiceLine(TypedDict):
    date: str
    requestId: str
    personaId: str
    persona: str
    model: str
    chars: int
    unitPrice: int
    amount: int


class InvoiceTotals(TypedDict):
    calls: int
    chars: int
    amount: int


class Invoice(TypedDict):
    lines: list[InvoiceLine]
    totals: InvoiceTotals


class EarningsDay(TypedDict):
    date: str
    personaId: str
    persona: str
    calls: int
    chars: int
    gross: int
    creatorShare: int
    providerCost: int
    platformShare: int


class StatementSettlement(TypedDict):
    settlementId: str
    createdAt: str | None
    confirmedAt: str | None
    usageCount: int
    amount: int
    creatorAmount: int
    status: str
    txHash: str | None


class CreatorStatement(TypedDict):
    days: list[EarningsDay]
    totals: dict[str, int]
    settlements: list[StatementSettlement]


class Statement(TypedDict):
    """`GET /statements?period=YYYY-MM`: the month's invoice and, for creators, their earnings."""

    period: str
    currency: str
    unit: str
    accountId: str
    invoice: Invoice
    earnings: CreatorStatement | None


@dataclass(frozen=True)
class StatementFile:
    """A statement downloaded as CSV (`GET /statements?format=csv`), with the name the platform gave it."""

    content: bytes
    filename: str


def _missing_fields(value: Any, shape: Any, where: str = "") -> list[str]:
    """The required fields of TypedDict `shape` (recursively) that `value` lacks, as dotted paths."""
    if not isinstance(value, dict):
        return [where or "(the body)"]
    missing: list[str] = []
    for name, kind in get_type_hints(shape).items():
        path = f"{where}.{name}" if where else name
        if name not in value:
            if name in shape.__required_keys__:
                missing.append(path)
        elif is_typeddict(kind):
            missing += _missing_fields(value[name], kind, path)
    return missing


class ApiError(Exception):
    """A refused or failed platform call: HTTP status (0 = no answer), a stable code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.details = details or {}  # e.g. `needed` and `available` micro-units on a 402

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, code={self.code!r}, message={self.message!r})"


@dataclass(frozen=True)
class Speech:
    """Audio from `POST /tts` with the metering headers the platform sent along."""

    audio: bytes
    content_type: str
    request_id: str | None
    usage_chars: int | None


def _error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        envelope = body["error"]
        return ApiError(
            response.status_code,
            str(envelope["code"]),
            str(envelope.get("message") or envelope["code"]),
            retryable=bool(envelope.get("retryable", False)),
            details=envelope.get("details") if isinstance(envelope.get("details"), dict) else None,
        )
    except (ValueError, KeyError, TypeError):
        # Not the platform's envelope (a proxy page, a framework default): keep it short and generic.
        text = (
            response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason_phrase
        )
        return ApiError(response.status_code, f"http_{response.status_code}", text or "request failed")


def base_url_from_env() -> str:
    """The platform's URL: `VOXPERSONA_API_URL`, or 127.0.0.1:3000."""
    return os.environ.get("VOXPERSONA_API_URL", DEFAULT_BASE_URL).rstrip("/")


class PlatformClient:
    """One method per platform route. Use as a context manager or call `close()`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, api_key: str | None = None) -> PlatformClient:
        """Base URL from `VOXPERSONA_API_URL` (default 127.0.0.1:3000); the key as given."""
        return cls(base_url_from_env(), api_key)

    @property
    def has_key(self) -> bool:
        return self._api_key is not None

    def __repr__(self) -> str:
        return f"PlatformClient(base_url={self.base_url!r}, key={'set' if self._api_key else 'none'})"

    __str__ = __repr__

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------------

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A request that never got an answer → ApiError 0 (`platform_timeout`, `platform_unreachable`)."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ApiError(
                0, "platform_timeout", f"the platform did not answer in time ({exc})", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                0, "platform_unreachable", f"cannot reach {self.base_url} ({exc})", retryable=True
            ) from None

    def _headers(self, *, idempotency_key: str | None = None, post: bool = False) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if post:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        return headers

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = self._headers(idempotency_key=idempotency_key, post=method == "POST")
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        with self._reaching():
            response = self._http.request(method, path, headers=headers, **kwargs, **extra)
        if response.is_error:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # -- the contract -----------------------------------------------------------------------------------

    def limits(self) -> Limits:
        """`GET /v1/limits` (no key needed). A body without every documented field is an `invalid_limits`
        error here, once, rather than a `KeyError` somewhere in a page."""
        response = self._send("GET", "/v1/limits")
        try:
            body = response.json()
        except ValueError:
            body = None
        missing = _missing_fields(body, Limits)
        if missing:
            raise ApiError(
                response.status_code,
                "invalid_limits",
                f"GET /v1/limits answered without {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
            )
        return cast(Limits, body)

    # -- accounts ----------------------------------------------------------------------------------------

    def sign_up(
        self,
        name: str,
        email: str,
        role: Role,
        payout_wallet: str | None = None,
        *,
        idempotency_key: str | None = None,
        password: str | None = None,
    ) -> SignUp:
        body: dict[str, Any] = {"name": name, "email": email, "role": role}
        if payout_wallet:
            body["payoutWallet"] = payout_wallet
        if password:
            body["password"] = password
        return cast(SignUp, self._json("POST", "/accounts", json=body, idempotency_key=idempotency_key))

    def me(self) -> Account:
        return cast(Account, self._json("GET", "/accounts/me"))

    # -- signing in and API keys -------------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> SignedIn:
        """`POST /sessions` with an email and password → a session token."""
        return cast(SignedIn, self._json("POST", "/sessions", json={"email": email, "password": password}))

    def sign_in_with_key(self) -> SignedIn:
        """`POST /sessions` with this client's API key → a session token with the key's scope."""
        return cast(SignedIn, self._json("POST", "/sessions", json={}))

    def sign_out(self) -> bool:
        """End the session this client's token belongs to (every tab holding it is signed out)."""
        return bool(self._json("DELETE", "/sessions/current")["signedOut"])

    def request_password_reset(self, email: str) -> None:
        self._json("POST", "/password-resets", json={"email": email})

    def reset_password(self, token: str, password: str) -> Account:
        body = {"token": token.strip(), "password": password}
        return cast(Account, self._json("POST", "/password-resets/confirm", json=body)["account"])

    def list_keys(self) -> list[ApiKeyInfo]:
        return cast(list[ApiKeyInfo], self._json("GET", "/accounts/me/keys"))

    def create_key(self, name: str, scope: str = "full") -> IssuedKey:
        return cast(IssuedKey, self._json("POST", "/accounts/me/keys", json={"name": name, "scope": scope}))

    def revoke_key(self, key_id: str) -> ApiKeyInfo:
        return cast(ApiKeyInfo, self._json("DELETE", "/accounts/me/keys/" + url_quote(key_id, safe="")))

    # -- files and personas ------------------------------------------------------------------------------

    def upload_file(
        self, filename: str, content: bytes, content_type: str, *, idempotency_key: str | None = None
    ) -> FileIntake:
        files = {"file": (filename, content, content_type or "application/octet-stream")}
        return cast(
            FileIntake,
            self._json("POST", "/files", files=files, idempotency_key=idempotency_key, timeout=60.0),
        )

    def create_voice(
        self,
        *,
        file_id: str,
        name: str,
        consent: Consent,
        visibility: str | None = None,  # None: the platform's default
        description: str | None = None,
        persona_prompt: str | None = None,
        tags: list[str] | None = None,
        language: str | None = None,
        price_multiplier_bps: int | None = None,  # within GET /v1/limits → prices.multiplierBpsMin/Max
        model: str | None = None,
        text: str | None = None,
        sample_text: str | None = None,
        idempotency_key: str | None = None,
    ) -> VoiceCreated:
        optional = {
            "description": description,
            "personaPrompt": persona_prompt,
            "tags": tags,
            "language": language,
            "priceMultiplierBps": price_multiplier_bps,
            "model": model,
            "text": text,
            "sampleText": sample_text,
            "visibility": visibility,
        }
        body: dict[str, Any] = {"fileId": file_id, "name": name, "consent": consent}
        body.update({k: v for k, v in optional.items() if v not in (None, "", [])})
        return cast(VoiceCreated, self._json("POST", "/voices", json=body, idempotency_key=idempotency_key))

    def get_voice(self, voice_id: str) -> Persona:
        return cast(Persona, self._json("GET", f"/voices/{voice_id}"))

    def list_voices(
        self,
        *,
        q: str | None = None,
        tag: str | None = None,
        language: str | None = None,
        sort: Literal["popular", "new"] = "popular",
        limit: int = 20,
        offset: int = 0,
    ) -> PersonaPage:
        params: dict[str, str | int] = {"sort": sort, "limit": limit, "offset": offset}
        params.update({k: v for k, v in {"q": q, "tag": tag, "language": language}.items() if v})
        return cast(PersonaPage, self._json("GET", "/voices", params=params))

    def sample_audio(self, sample_audio_url: str) -> bytes:
        """GET a persona's `sampleAudioUrl` (a path relative to the platform) with the key."""
        return self._send("GET", sample_audio_url).content

    def provenance(self, voice_id: str) -> Provenance:
        return cast(Provenance, self._json("GET", f"/voices/{voice_id}/provenance"))

    def revoke_voice(self, voice_id: str) -> Revoked:
        return cast(Revoked, self._json("DELETE", f"/voices/{voice_id}"))

    # -- managing personas, reports, admin (routes_manage.py, routes_admin.py) -------------------------------

    def my_voices(self) -> PersonaPage:
        """Your personas in every state (in review, failed, revoked too), newest first."""
        return cast(PersonaPage, self._json("GET", "/accounts/me/voices"))

    def edit_voice(self, voice_id: str, changes: dict[str, Any]) -> Persona:
        """PATCH /voices/{id} with camelCase fields (name, description, personaPrompt, tags, …)."""
        return cast(Persona, self._json("PATCH", f"/voices/{voice_id}", json=changes))

    def voice_versions(self, voice_id: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json("GET", f"/voices/{voice_id}/versions")["items"])

    def retry_voice(self, voice_id: str, *, idempotency_key: str | None = None) -> VoiceCreated:
        path = f"/voices/{voice_id}/retry"
        return cast(VoiceCreated, self._json("POST", path, idempotency_key=idempotency_key))

    def preview_file(self, file_id: str, sample_text: str | None = None, model: str | None = None) -> bytes:
        """WAV of an upload cloned by the provider's preview (no clone, no fee)."""
        body = {k: v for k, v in {"sampleText": sample_text, "model": model}.items() if v}
        return self._send("POST", f"/files/{file_id}/preview", json=body, timeout=60.0).content

    def report_voice(self, voice_id: str, reason: str, details: str = "") -> dict[str, Any]:
        body = {"reason": reason, "details": details}
        return cast(dict[str, Any], self._json("POST", f"/voices/{voice_id}/reports", json=body))

    def admin_reviews(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json("GET", "/admin/reviews")["items"])

    def admin_decide(self, voice_id: str, approve: bool, note: str = "") -> dict[str, Any]:
        path = f"/admin/reviews/{voice_id}/{'approve' if approve else 'reject'}"
        return cast(dict[str, Any], self._json("POST", path, json={"note": note}))

    def admin_reports(self, status: str = "open") -> list[dict[str, Any]]:
        items = self._json("GET", "/admin/reports", params={"status": status})["items"]
        return cast(list[dict[str, Any]], items)

    def admin_resolve(self, report_id: str, action: str, note: str = "") -> dict[str, Any]:
        body = {"action": action, "note": note}
        return cast(dict[str, Any], self._json("POST", f"/admin/reports/{report_id}/resolve", json=body))

    def admin_accounts(self, *, email: str | None = None, banned: bool = False) -> list[dict[str, Any]]:
        params: dict[str, str] = {"banned": "true" if banned else "false"}
        if email:
            params["email"] = email
        return cast(list[dict[str, Any]], self._json("GET", "/admin/accounts", params=params)["items"])

    def admin_ban(self, account_id: str, banned: bool, reason: str) -> dict[str, Any]:
        path = f"/admin/accounts/{account_id}/{'ban' if banned else 'unban'}"
        return cast(dict[str, Any], self._json("POST", path, json={"reason": reason}))

    def admin_audit(self, *, before: int | None = None, subject: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"before": before, "subject": subject}.items() if v}
        return cast(dict[str, Any], self._json("GET", "/admin/audit", params=params))

    def quote(self, voice_id: str, chars: int, model: str | None = None) -> Quote:
        """What `chars` characters of speech with this persona (and `model`, the persona's own by default) will
        cost: the ledger's own price function, exactly what the call is then metered at."""
        params: dict[str, str | int] = {"voice": voice_id, "chars": chars}
        if model:
            params["model"] = model
        return cast(Quote, self._json("GET", "/quotes", params=params))

    def get_job(self, job_id: str) -> Job:
        return cast(Job, self._json("GET", f"/jobs/{job_id}"))

    # -- speech ------------------------------------------------------------------------------------------

    def synthesize(
        self,
        *,
        voice: str,
        text: str,
        model: str | None = None,
        audio_format: str | None = None,
        speed: float | None = None,
        volume: float | None = None,
        voice_label: VoiceLabel | None = None,
        instruction: str | None = None,
        idempotency_key: str | None = None,
    ) -> Speech:
        optional = {
            "model": model,
            "format": audio_format,
            "speed": speed,
            "volume": volume,
            "voiceLabel": voice_label or None,
            "instruction": instruction,
        }
        body: dict[str, Any] = {"voice": voice, "text": text}
        body.update({k: v for k, v in optional.items() if v not in (None, "")})
        # Streamed by the platform; the UI needs the whole clip to play it, so read it to the end here.
        response = self._send("POST", "/tts", json=body, idempotency_key=idempotency_key, timeout=120.0)
        chars = response.headers.get("X-Usage-Chars")
        return Speech(
            audio=response.content,
            content_type=response.headers.get("Content-Type", "application/octet-stream").split(";")[0],
            request_id=response.headers.get("X-Request-Id"),
            usage_chars=int(chars) if chars and chars.isdigit() else None,
        )

    # -- billing -----------------------------------------------------------------------------------------

    def usage(self) -> Usage:
        return cast(Usage, self._json("GET", "/usage"))

    def balance(self) -> Balance:
        return cast(Balance, self._json("GET", "/balance"))

    def statement(self, period: str) -> Statement:
        """The month `period` (YYYY-MM) as JSON: invoice lines and totals; for creators also earnings."""
        return cast(Statement, self._json("GET", "/statements", params={"period": period, "format": "json"}))

    def statement_csv(self, period: str, part: str = "invoice") -> StatementFile:
        """The month as a CSV download: `invoice`, or (creators) `earnings` or `settlements`."""
        response = self._send("GET", "/statements", params={"period": period, "format": "csv", "part": part})
        disposition = response.headers.get("Content-Disposition", "")
        name = disposition.split("filename=")[-1].strip('" ') if "filename=" in disposition else ""
        return StatementFile(response.content, name or f"voxpersona-{period}-{part}.csv")

    def settle(self, *, idempotency_key: str | None = None) -> Settlement:
        return cast(Settlement, self._json("POST", "/settlements", json={}, idempotency_key=idempotency_key))

    def list_settlements(self) -> list[Settlement]:
        return cast(list[Settlement], self._json("GET", "/settlements")["data"])

    def get_settlement(self, settlement_id: str) -> Settlement:
        return cast(Settlement, self._json("GET", f"/settlements/{settlement_id}"))

    # -- operations --------------------------------------------------------------------------------------

    def health(self) -> Health:
        return cast(Health, self._json("GET", "/health"))

    # -- money on chain ----------------------------------------------------------------------------------

    def crypto_topup(self) -> dict[str, Any]:
        """`POST /topups/crypto`: deposit instructions {contract, chainId, reference, function, confirmations,
        weiPerMicro, currency, devChain, rpcUrl}."""
        return cast(dict[str, Any], self._json("POST", "/topups/crypto", json={}))

    def crypto_topups(self) -> list[dict[str, Any]]:
        """The caller's credited crypto top-ups, newest first."""
        return cast(list[dict[str, Any]], self._json("GET", "/topups/crypto")["data"])

    def wallet_challenge(self) -> dict[str, Any]:
        """`GET /accounts/me/wallet-challenge`: {message, expiresAt}; sign `message` with the new wallet."""
        return cast(dict[str, Any], self._json("GET", "/accounts/me/wallet-challenge"))

    def change_payout_wallet(self, wallet: str, signature: str) -> Account:
        """`PATCH /accounts/me` with the wallet and its personal_sign signature of the challenge."""
        body = {"payoutWallet": wallet, "signature": signature}
        return cast(Account, self._json("PATCH", "/accounts/me", json=body))

    def payouts(self) -> dict[str, Any]:
        """`GET /accounts/me/payouts`: what the payout wallet can withdraw from the registry now."""
        return cast(dict[str, Any], self._json("GET", "/accounts/me/payouts"))

    # -- talking with a persona --------------------------------------------------------------------------

    def character(self, voice_id: str) -> Character:
        """`GET /voices/{id}/character`: the persona's current character (`personaPrompt` for its creator)."""
        return cast(Character, self._json("GET", f"/voices/{voice_id}/character"))

    def edit_character(self, voice_id: str, changes: dict[str, str | None]) -> Character:
        """`PATCH /voices/{id}/character` (the creator): only the fields in `changes` change; `None` clears
        greeting, emotion or style. Every edit is a new version."""
        return cast(Character, self._json("PATCH", f"/voices/{voice_id}/character", json=changes))

    def chat(
        self,
        voice_id: str,
        message: str,
        *,
        conversation: str | None = None,
        audio: bool = False,
        idempotency_key: str | None = None,
    ) -> ChatReply:
        """`POST /voices/{id}/chat`: one stored turn, the whole reply at once (base64 MP3 when `audio`)."""
        body: dict[str, Any] = {"message": message, "audio": audio}
        if conversation:
            body["conversation"] = conversation
        return cast(
            ChatReply,
            self._json(
                "POST", f"/voices/{voice_id}/chat", json=body, idempotency_key=idempotency_key, timeout=120.0
            ),
        )

    def conversations(self) -> list[ConversationSummary]:
        """`GET /conversations`: the caller's, most recently active first."""
        return cast(list[ConversationSummary], self._json("GET", "/conversations")["data"])

    def conversation(self, conversation_id: str) -> ConversationDetail:
        return cast(ConversationDetail, self._json("GET", f"/conversations/{conversation_id}"))

    def delete_conversation(self, conversation_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._json("DELETE", f"/conversations/{conversation_id}"))

    def stream_chat(
        self,
        voice_id: str,
        messages: list[ChatTurn],
        *,
        audio_format: str | None = "wav",
        conversation: str | None = None,
    ) -> ReplyStream:
        """`POST /v1/chat/completions` with `stream: true` (and the reply spoken in `audio_format`, or text only
        with None). A refusal (402, 404, 422…) raises `ApiError` here, before anything streams; then read the
        text deltas from `ReplyStream.text()` — the audio, usage and any mid-stream error collect beside it."""
        body: dict[str, Any] = {"model": voice_id, "messages": messages, "stream": True}
        if conversation:  # the platform stores the turn in this conversation (else in a new one)
            body["conversation"] = conversation
        if audio_format:
            body["modalities"] = ["text", "audio"]
            body["audio"] = {"voice": voice_id, "format": audio_format}
        headers = {**self._headers(post=True), "Accept": "text/event-stream"}
        request = self._http.build_request(
            "POST", "/v1/chat/completions", json=body, headers=headers, timeout=120.0
        )
        with self._reaching():
            response = self._http.send(request, stream=True)
        if response.is_error:
            response.read()
            response.close()
            raise _error_from(response)
        return ReplyStream(response, audio_format)


# -- talking with a persona: the shapes and the streamed reply ------------------------------------------------


class Character(TypedDict):
    """`GET /voices/{id}/character`; the platform leaves out what is unset (greeting, emotion, style)."""

    version: int
    language: str
    createdAt: str | None
    greeting: NotRequired[str | None]
    emotion: NotRequired[str | None]
    style: NotRequired[str | None]
    personaPrompt: NotRequired[str | None]  # the creator's only


class TurnUsage(TypedDict):
    requestId: str
    promptTokens: int
    completionTokens: int
    chatAmount: int
    ttsChars: int
    ttsAmount: int
    amount: int


class ChatTurn(TypedDict):
    role: str  # user | assistant (| system)
    content: str


class StoredTurn(TypedDict):
    seq: int
    role: str
    content: str
    characterVersion: int
    createdAt: str | None
    usage: NotRequired[TurnUsage | None]


class ConversationSummary(TypedDict):
    id: str
    personaId: str
    persona: str
    source: str  # chat: POST /voices/{id}/chat; openai: one POST /v1/chat/completions
    turns: int
    lastTurn: StoredTurn | None
    createdAt: str | None
    updatedAt: str | None


class ConversationDetail(ConversationSummary):
    messages: list[StoredTurn]


class ChatReply(TypedDict):
    conversation: str
    reply: str
    characterVersion: int
    usage: TurnUsage
    audio: NotRequired[str | None]
    spoken: NotRequired[str | None]


def whole_wav(data: bytes) -> bytes:
    """A streamed WAV (one header with sizes at their maximum, then PCM) with its real sizes written in, so a
    player knows its duration; other audio is returned as it is."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[36:40] != b"data":
        return data
    size = len(data) - 44
    return b"RIFF" + (size + 36).to_bytes(4, "little") + data[8:40] + size.to_bytes(4, "little") + data[44:]


class ReplyStream:
    """A streamed reply under way. `text()` yields its text deltas as they come (for `st.write_stream`); the
    audio deltas collect in `audio` (one playable file once the stream ended), the platform's amounts for the
    turn in `usage`, a failure mid-stream in `error`. Use as a context manager (or read `text()` to the end)."""

    def __init__(self, response: httpx.Response, audio_format: str | None) -> None:
        self._response = response
        self.request_id: str | None = response.headers.get("X-Request-Id")
        self.audio_format = audio_format
        self.reply = ""
        self.usage: dict[str, Any] | None = None  # `voxpersona` of the finish chunk: TurnUsage + conversation
        self.error: ApiError | None = None
        self.done = False
        self._audio: list[bytes] = []

    @property
    def audio(self) -> bytes:
        joined = b"".join(self._audio)
        return whole_wav(joined) if self.audio_format == "wav" else joined

    def events(self) -> Iterator[dict[str, Any]]:
        """The SSE `data:` payloads, parsed, until `[DONE]` (or the stream's end)."""
        try:
            for line in self._response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    self.done = True
                    return
                yield json.loads(data)
        except httpx.HTTPError as exc:
            self.error = ApiError(0, "stream_broken", f"the reply stream broke off ({exc})", retryable=True)
        finally:
            self.close()

    def text(self) -> Iterator[str]:
        for event in self.events():
            if "error" in event:
                err = event["error"] or {}
                self.error = ApiError(
                    200,
                    str(err.get("code") or "stream_error"),
                    str(err.get("message") or "the reply broke off"),
                    retryable=bool(err.get("retryable", False)),
                )
                continue
            if isinstance(event.get("voxpersona"), dict):
                self.usage = event["voxpersona"]
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                audio = delta.get("audio") or {}
                if audio.get("data"):
                    self._audio.append(base64.b64decode(audio["data"]))
                if delta.get("content"):
                    self.reply += delta["content"]
                    yield delta["content"]

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
