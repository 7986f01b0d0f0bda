"""Request bodies of persona management, reports and the admin routes (camelCase JSON, every string bounded)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bentos.api.schemas import Tag, _Body
from bentos.core import personas as p
from bentos.core.persona_edits import PersonaEdit, PreviewRequest
from bentos.core.reports import DETAILS_MAX_CHARS, ReportReason, Resolution
from bentos.core.review import NOTE_MAX_CHARS


def _one_of(values: Any) -> dict[str, Any]:
    return {"enum": [str(v) for v in values]}


class EditVoice(_Body):
    """PATCH /voices/{id}: only the fields sent change."""

    name: str | None = Field(default=None, max_length=p.NAME_MAX_CHARS)
    description: str | None = Field(default=None, max_length=p.DESCRIPTION_MAX_CHARS)
    persona_prompt: str | None = Field(default=None, alias="personaPrompt", max_length=p.PROMPT_MAX_CHARS)
    tags: list[Tag] | None = Field(default=None, max_length=p.MAX_TAGS)
    language: str | None = Field(default=None, max_length=8, json_schema_extra=_one_of(p.LANGUAGES))
    visibility: str | None = Field(default=None, max_length=10, json_schema_extra=_one_of(p.VISIBILITIES))
    price_multiplier_bps: int | None = Field(
        default=None,
        alias="priceMultiplierBps",
        ge=1,
        le=1_000_000,
        description="× each model's list price, in basis points (10000 = 1×), within GET /v1/limits",
    )

    def edit(self) -> PersonaEdit:
        return PersonaEdit(
            self.name,
            self.description,
            self.persona_prompt,
            self.tags,
            self.language,
            self.visibility,
            self.price_multiplier_bps,
        )


class PreviewUpload(_Body):
    """POST /files/{id}/preview."""

    sample_text: str | None = Field(default=None, alias="sampleText", max_length=p.SAMPLE_TEXT_MAX_CHARS)
    model: str = Field(default="step-tts-2", max_length=40, json_schema_extra=_one_of(p.CLONE_MODELS))
    language: str = Field(default="en", max_length=8, json_schema_extra=_one_of(p.LANGUAGES))

    def request(self, file_id: str) -> PreviewRequest:
        return PreviewRequest(file_id, self.sample_text, self.model, self.language)


class ReportVoice(_Body):
    reason: ReportReason
    details: str = Field(default="", max_length=DETAILS_MAX_CHARS)


class ReviewNote(_Body):
    note: str = Field(default="", max_length=NOTE_MAX_CHARS)


class ResolveReport(_Body):
    action: Resolution
    note: str = Field(default="", max_length=NOTE_MAX_CHARS)


class BanAccount(_Body):
    reason: str = Field(max_length=2_000)


class UnbanAccount(_Body):
    reason: str = Field(default="", max_length=2_000)


__all__ = [
    "BanAccount",
    "EditVoice",
    "PreviewUpload",
    "ReportVoice",
    "ResolveReport",
    "ReviewNote",
    "UnbanAccount",
]
