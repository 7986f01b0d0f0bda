"""Response models of the REST API: camelCase JSON, money in integer micro-CNY, times as ISO 8601 text.

Each is read from the core's dataclass of the same shape (`View.of(...)`); a field the core object lacks stays
unset and, on routes that say so, out of the JSON (e.g. the creator-only part of a persona).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from bentos.chain.outbox import OutboxStatus
from bentos.core.accounts import Role
from bentos.core.catalog import ProvenanceStatus
from bentos.core.chat import Character
from bentos.core.errors import ErrorCode
from bentos.core.personas import JobStatus, PersonaState, Visibility


def camel(name: str) -> str:
    """snake_case → camelCase, a digit group staying as written: price_per_10k_chars → pricePer10kChars."""
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def _iso(value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    # The database hands back naive UTC times (SQLite keeps no zone): RFC 3339 `date-time` needs the offset.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


# isoformat() as the API has always written it (pydantic would write "Z" for UTC), always with its offset.
IsoTime = Annotated[
    str | None,
    BeforeValidator(_iso),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]


class View(BaseModel):
    model_config = ConfigDict(alias_generator=camel, populate_by_name=True, from_attributes=True)

    @classmethod
    def of(cls, source: object) -> Self:
        return cls.model_validate(source, from_attributes=True)


class ErrorBody(View):
    code: ErrorCode
    message: str
    retryable: bool = Field(description="whether the same request may succeed later")
    details: dict[str, int | str] | None = Field(
        default=None, description="specifics, e.g. `needed` and `available` micro-units on a 402"
    )


class ErrorEnvelope(View):
    error: ErrorBody


ERROR_STATUSES: dict[int, str] = {
    400: "refused as it stands (`invalid_text`, `invalid_idempotency_key`, `nothing_to_settle`, …)",
    402: "the balance can't pay for this call (`insufficient_balance`; `details.needed` and `details.available`)",
    401: "the API key is missing (`unauthenticated`) or unknown or revoked (`invalid_api_key`)",
    403: "the key's account may not do this (`forbidden`)",
    404: "no such object, or not one the caller may see (`not_found`)",
    409: "conflicts with the current state (`email_taken`, `idempotency_key_reused`, `voice_not_ready`, …)",
    410: "gone: revoked by its creator or no longer stored (`voice_revoked`, `blob_missing`)",
    413: "the body is over its limit (`request_too_large`, `file_too_large`)",
    415: "not WAV or MP3 audio (`unsupported_format`)",
    422: "the request does not validate (`invalid_request`) or breaks a domain rule (`error.code` says which)",
    429: "rate limited (`rate_limited`, `spend_cap_reached`, `provider_rate_limited`); `Retry-After` says when",
    451: "the text was refused by content moderation (`content_blocked`)",
    502: "the voice provider gave an answer we can't read (`provider_bad_response`)",
    503: "a dependency is unavailable (`provider_unavailable`, `database_unavailable`, `chain_unavailable`, …); "
    "`Retry-After` says when to come back",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an operation can answer, each the one envelope. An operation
    that takes an API key (401) can also meet the per-key rate limit (429); any can meet a database outage (503)."""
    answered = set(statuses) | ({429} if 401 in statuses else set()) | {503}
    return {s: {"model": ErrorEnvelope, "description": ERROR_STATUSES[s]} for s in sorted(answered)}


# --- accounts ----------------------------------------------------------------------------------------------


class AccountView(View):
    id: str
    name: str
    email: str
    role: Role
    payout_wallet: str | None
    created_at: IsoTime


class SignedUp(View):
    account: AccountView
    api_key: str | None = Field(description="shown in the first answer only; a replay carries null")


class NewKey(View):
    api_key: str


class KeyRevoked(View):
    revoked: bool


# --- uploads and embeddings --------------------------------------------------------------------------------


class ImpersonationView(View):
    persona_id: str
    name: str | None
    cosine: float


class FileView(View):
    file_id: str
    step_file_id: str | None
    duration: float
    sample_rate: int
    channels: int
    format: str
    hints: list[str]
    sha256: str
    impersonation: ImpersonationView | None


class EmbeddingView(View):
    vector: list[float]
    dim: int
    hash: str
    encoder: str
    version: str
    pretrained: bool

    @field_validator("vector", mode="before")
    @classmethod
    def _floats(cls, value: Sequence[float]) -> list[float]:
        return [float(x) for x in value]  # a float32 array


# --- personas ----------------------------------------------------------------------------------------------


class CreatorView(View):
    id: str
    name: str | None


class FailureView(View):
    step: PersonaState | None
    code: str
    message: str | None
    retryable: bool


class EmbeddingInfoView(View):
    encoder: str
    version: str
    pretrained: bool
    dim: int
    hash: str


class ChainIntentView(View):
    status: OutboxStatus
    tx_hash: str | None
    block_number: int | None
    error: str | None


class LookAlikeView(View):
    persona_id: str
    cosine: float | None


class CharacterView(View):
    version: int = Field(description="0: as created; every edit adds one")
    persona_prompt: str | None = Field(default=None, description="its creator only")
    greeting: str | None = None
    emotion: str | None = None
    style: str | None = None
    language: str
    created_at: IsoTime = None

    @classmethod
    def of_character(cls, character: Character, with_prompt: bool) -> Self:
        view = cls.of(character)
        return view if with_prompt else view.model_copy(update={"persona_prompt": None})


class PersonaView(View):
    """A persona. The fields after `revokedAt` are sent to its creator only."""

    id: str
    name: str
    description: str
    tags: list[str]
    language: str
    visibility: Visibility
    status: PersonaState
    model: str
    price_per_10k_chars: int = Field(description="micro-CNY per 10,000 chars with the persona's own model")
    price_multiplier_bps: int = Field(description="× each model's list price (10000 = 1×)")
    character: CharacterView | None = Field(
        default=None, description="greeting, label, language (and, for its creator, the prompt) it talks with"
    )
    calls: int
    creator: CreatorView
    sample_text: str | None
    sample_audio_url: str | None
    created_at: IsoTime
    revoked_at: IsoTime
    persona_prompt: str | None = None
    notices: list[str] | None = None
    failure: FailureView | None = None
    embedding: EmbeddingInfoView | None = None
    chain: ChainIntentView | None = None
    step_voice_id: str | None = None
    step_file_id: str | None = Field(default=None, description="the provider file its voice was cloned from")
    clone_duplicated: bool | None = None
    impersonation: LookAlikeView | None = None


class PersonaPageView(View):
    data: list[PersonaView]
    total: int


class VoiceStarted(View):
    voice_id: str
    status: PersonaState
    job_id: str


class VoiceRevoked(View):
    id: str
    status: PersonaState


class ChainRecordView(View):
    contract: str
    onchain_hash: str | None
    creator: str | None
    registered_at: int | None
    revoked_at: int | None
    tx_hash: str | None


class ProvenanceView(View):
    """`encoder` and `encoderVersion` are present once the persona has an embedding."""

    status: ProvenanceStatus
    embedding_hash: str | None
    encoder: str | None = None
    encoder_version: str | None = None
    chain: ChainRecordView | None


class JobView(View):
    id: str
    persona_id: str
    status: JobStatus
    state: PersonaState | None
    attempts: int
    failure: FailureView | None
    created_at: IsoTime
    updated_at: IsoTime


# --- speech and billing ------------------------------------------------------------------------------------


class QuoteView(View):
    voice_id: str
    chars: int
    model: str
    unit_price: int = Field(description="micro-CNY per 10,000 characters")
    amount: int = Field(description="micro-CNY, as it will be metered")
    currency: str
    multiplier_bps: int = Field(description="the persona's multiplier on the model's list price (10000 = 1×)")


class UsageLineView(View):
    request_id: str
    persona_id: str
    chars: int
    audio_seconds: float
    model: str
    unit_price: int
    amount: int = Field(description="what the caller paid, micro-CNY")
    provider_cost: int = Field(description="what the provider charged the platform for the call")
    creator_share: int = Field(description="the persona creator's earnings from the call")
    platform_share: int = Field(description="amount − creatorShare; platformShare − providerCost ≥ the floor")
    settlement_id: str | None
    created_at: IsoTime


class UsageTotalsView(View):
    calls: int
    chars: int
    audio_seconds: float
    amount: int


class EarningsView(View):
    persona_id: str
    name: str
    calls: int
    chars: int
    amount: int
    creator_share: int
    unsettled: int


class UsageView(View):
    currency: str
    unit: str
    totals: UsageTotalsView
    calls: list[UsageLineView]
    earnings: list[EarningsView]


class SettlementView(View):
    settlement_id: str
    creator_id: str
    amount: int
    creator_amount: int
    platform_amount: int
    usage_count: int
    usage_digest: str
    wei_amount: str
    payout_wallet: str
    status: OutboxStatus
    tx_hash: str | None
    period_start: IsoTime
    period_end: IsoTime
    created_at: IsoTime
    block_number: int | None = None
    confirmed_at: IsoTime = None
    chain_settlement_id: str | None = None


class SettlementList(View):
    data: list[SettlementView]


# --- what clients must know --------------------------------------------------------------------------------


class RangeView(View):
    min: float
    max: float


class TtsLimits(View):
    max_chars: int
    models: list[str]
    formats: list[str]
    speed: RangeView
    volume: RangeView
    instruction_max_chars: int
    instruction_models: list[str]
    voice_labels: dict[str, list[str]]
    long_max_chars: int = Field(
        description="texts over `maxChars` and up to this are split at sentences and streamed as one audio"
    )
    long_formats: list[str] = Field(description="the formats a text over `maxChars` can be spoken in")
    realtime_session_max_chars: int = Field(
        description="characters one /v1/realtime/audio session may speak (their price is held at its start)"
    )


class UploadLimitsView(View):
    max_bytes: int
    min_seconds: float
    max_seconds: float
    formats: list[str]


class PersonaLimitsView(View):
    name_max_chars: int
    description_max_chars: int
    prompt_max_chars: int
    transcript_max_chars: int
    sample_text_max_chars: int
    max_tags: int
    tag_max_chars: int
    languages: list[str]
    visibilities: list[Visibility]
    models: list[str]


class PriceTermsView(View):
    currency: str
    unit: str
    micro_per_unit: int
    list_price_per_10k_chars: dict[str, int]
    provider_cost_per_10k_chars: dict[str, int]
    creator_share_bps: int = Field(description="the creator's share of each call's margin above the floor")
    margin_floor_bps: int = Field(
        description="platform revenue − provider cost ≥ this share of the provider cost"
    )
    multiplier_bps_min: int = Field(description="the lowest price multiplier a creator may set (10000 = 1×)")
    multiplier_bps_max: int
    clone_fee: int = Field(description="what a creator pays per clone (never for a duplicated one)")
    trial_credit: int = Field(description="credited to every new account")
    rounding: str


class PipelineView(View):
    states: list[PersonaState]
    final_states: list[PersonaState]


class LimitsView(View):
    tts: TtsLimits
    upload: UploadLimitsView
    persona: PersonaLimitsView
    prices: PriceTermsView
    pipeline: PipelineView


# --- operations --------------------------------------------------------------------------------------------


class PartHealth(View):
    model_config = ConfigDict(extra="allow")  # each part adds what it knows (reason, depth, backend…)

    state: str


class HealthView(View):
    status: str
    provider: PartHealth
    chain: PartHealth
    db: PartHealth
    queue: PartHealth
    money: PartHealth | None = None


# --- money -------------------------------------------------------------------------------------------------


class BalanceView(View):
    available: int = Field(description="what the caller can spend now, micro-units")
    reserved: int = Field(description="held for calls in flight")
    earnings: int = Field(description="a creator's earnings not yet in a payout")
    currency: str
    unit: str


class LedgerLineView(View):
    transaction_id: int
    reference: str
    kind: str = Field(description="trial | grant | crypto | reserve | release | speech | clone | payout …")
    book: str = Field(description="caller:<id> (balance), hold:<id> (reserved) or creator:<id> (earnings)")
    amount: int = Field(description="+ into the book, − out of it; micro-units")
    memo: str
    created_at: IsoTime


class LedgerView(View):
    currency: str
    unit: str
    data: list[LedgerLineView]
