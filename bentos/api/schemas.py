"""Request bodies of the REST API, validated (camelCase JSON). Every string a client sends is bounded here (and
so in OpenAPI); the domain checks the finer rules and owns the numbers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, WithJsonSchema
from pydantic.json_schema import JsonDict

from bentos.core import personas as p
from bentos.core.accounts import NAME_MAX_CHARS as ACCOUNT_NAME_MAX_CHARS
from bentos.core.speech import (
    INSTRUCTION_MAX_CHARS,
    OPENAI_FORMATS,
    SPEECH_SAMPLE_RATES,
    SPEED_RANGE,
    VOICE_LABELS,
    VOLUME_RANGE,
    SpeechOrder,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


MAX_TEXT_CHARS = 10_000  # hard cap for any text field; the configured per-call TTS limit is lower
# Speech bodies only: above any sensible `server.tts_long_max_chars` (checked by the domain), and small enough that
# even \u-escaped (6 bytes a character) the body stays under the guard's JSON body limit.
MAX_SPEECH_TEXT_CHARS = 40_000
MAX_STATEMENT = 1_000
Tag = Annotated[str, StringConstraints(max_length=p.TAG_MAX_CHARS)]
ShortId = Annotated[str, StringConstraints(max_length=64)]
SpeechModel = Annotated[
    str,
    StringConstraints(max_length=40),
    WithJsonSchema({"type": "string", "enum": list(p.CLONE_MODELS)}),  # checked by the domain
]
# Documented as the provider contract has them (checked there, so a wrong value gets its message).
SampleRate = Annotated[int, WithJsonSchema({"type": "integer", "enum": list(SPEECH_SAMPLE_RATES)})]
VoiceLabel = Annotated[
    dict[Tag, Tag],
    WithJsonSchema(
        {
            "type": "object",
            "description": "exactly one of language, emotion, style (GET /v1/limits `tts.voiceLabels`)",
            "properties": {k: {"type": "string", "enum": list(v)} for k, v in VOICE_LABELS.items()},
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
        }
    ),
]


class SignUp(_Body):
    name: str = Field(max_length=ACCOUNT_NAME_MAX_CHARS)
    email: str = Field(max_length=254)
    role: Literal["creator", "consumer"] = "consumer"
    payout_wallet: str | None = Field(default=None, alias="payoutWallet", max_length=42)
    password: str | None = Field(default=None, max_length=256, description="optional: sign in with it later")


class Consent(_Body):
    attested: bool
    statement: str = Field(default="", max_length=MAX_STATEMENT)
    challenge_id: ShortId | None = Field(
        default=None,
        alias="challengeId",
        description="a verified consent challenge for this file (POST /consent-challenges): required for public "
        "and unlisted personas (else 403 consent_not_verified); by default the file's latest verified one",
    )


def _one_of(values: tuple[str, ...]) -> JsonDict:
    # Documented as an enum, checked by the domain (so a wrong value gets its `invalid_persona` answer).
    enum: list[JsonValue] = [str(v) for v in values]
    return {"enum": enum}


class CreateVoice(_Body):
    file_id: ShortId = Field(alias="fileId")
    name: str = Field(max_length=p.NAME_MAX_CHARS)
    consent: Consent
    description: str = Field(default="", max_length=p.DESCRIPTION_MAX_CHARS)
    persona_prompt: str = Field(default="", alias="personaPrompt", max_length=p.PROMPT_MAX_CHARS)
    tags: list[Tag] = Field(default_factory=list, max_length=p.MAX_TAGS)
    language: str = Field(default="en", max_length=8, json_schema_extra=_one_of(p.LANGUAGES))
    visibility: str = Field(default="private", max_length=10, json_schema_extra=_one_of(p.VISIBILITIES))
    price_multiplier_bps: int | None = Field(
        default=None,
        alias="priceMultiplierBps",
        ge=1,
        le=1_000_000,
        description="the persona's price as a multiple of each model's list price, in basis points (10000 = 1×), "
        "within `pricing.multiplierBps` of GET /v1/limits; default 1×",
    )
    model: str = Field(default="step-tts-2", max_length=40, json_schema_extra=_one_of(p.CLONE_MODELS))
    text: str | None = Field(
        default=None, max_length=p.TRANSCRIPT_MAX_CHARS, description="transcript of the upload"
    )
    sample_text: str | None = Field(default=None, alias="sampleText", max_length=p.SAMPLE_TEXT_MAX_CHARS)

    def draft(self) -> p.PersonaDraft:
        return p.PersonaDraft(
            file_id=self.file_id,
            name=self.name,
            consent_attested=self.consent.attested,
            consent_statement=self.consent.statement,
            consent_challenge_id=self.consent.challenge_id,
            visibility=self.visibility,
            description=self.description,
            persona_prompt=self.persona_prompt,
            tags=self.tags,
            language=self.language,
            model=self.model,
            price_multiplier_bps=self.price_multiplier_bps,
            transcript=self.text,
            sample_text=self.sample_text,
        )


class Speak(_Body):
    voice: ShortId
    text: str = Field(
        max_length=MAX_SPEECH_TEXT_CHARS,
        description="at most `tts.longMaxChars` (GET /v1/limits); over `tts.maxChars` it is spoken in parts",
    )
    model: SpeechModel | None = Field(default=None, description="default: the persona's model")
    format: Literal["wav", "mp3", "flac", "opus", "pcm"] = "mp3"
    speed: float | None = Field(default=None, ge=SPEED_RANGE.min, le=SPEED_RANGE.max)
    volume: float | None = Field(default=None, ge=VOLUME_RANGE.min, le=VOLUME_RANGE.max)
    sample_rate: SampleRate | None = Field(default=None, alias="sampleRate")
    voice_label: VoiceLabel | None = Field(default=None, alias="voiceLabel", max_length=3)
    instruction: str | None = Field(default=None, max_length=INSTRUCTION_MAX_CHARS)

    def order(self) -> SpeechOrder:
        return SpeechOrder(**self.model_dump())


class OpenAISpeech(BaseModel):
    """OpenAI's /v1/audio/speech body; unknown OpenAI fields are ignored, as OpenAI SDKs may send more."""

    model: str = Field(default="tts-1", max_length=64)
    input: str = Field(max_length=MAX_SPEECH_TEXT_CHARS)
    voice: ShortId
    response_format: str = Field(
        default="mp3", max_length=10, json_schema_extra=_one_of(tuple(sorted(OPENAI_FORMATS)))
    )
    speed: float | None = None
    instructions: str | None = Field(default=None, max_length=p.PROMPT_MAX_CHARS)

    def order(self) -> SpeechOrder:
        return SpeechOrder.from_openai(
            self.voice, self.input, self.model, self.response_format, self.speed, self.instructions
        )


class EmbedRequest(_Body):
    file_id: ShortId = Field(alias="fileId")


class CreditGrant(_Body):
    account_id: ShortId = Field(alias="accountId")
    amount: int = Field(ge=1, le=10**12, description="micro-units to credit")
    reason: str = Field(min_length=1, max_length=500, description="why (e.g. the fiat payment's reference)")
