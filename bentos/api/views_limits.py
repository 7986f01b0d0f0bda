"""GET /v1/limits as the front end reads it: the shared limits plus which voice labels each model takes (with
English glosses) and where the chain's transactions can be looked up."""

from __future__ import annotations

from pydantic import Field

from bentos.api.views import LimitsView, TtsLimits, View


class ChainLinksView(View):
    explorer_url: str | None = Field(
        description="a block explorer's base URL: `<url>/tx/<hash>`, `<url>/address/<wallet>`; null when no "
        "explorer indexes this chain (the embedded and local dev chains)"
    )


class TtsLimitsByModel(TtsLimits):
    model_labels: dict[str, dict[str, list[str]]] = Field(
        description="per model: the voice labels it accepts by kind (language, emotion, style); {} for a model "
        "that takes an `instruction` instead"
    )
    label_glosses: dict[str, str] = Field(
        description="what each label value (a Chinese word) means in English"
    )


class ReportLimitsView(View):
    reasons: list[str] = Field(description="what a report (POST /voices/{id}/reports) may say is wrong")
    details_max_chars: int


class KeyLimitsView(View):
    scopes: list[str] = Field(
        description="what an API key may do: full, speech (read + speak and chat), read"
    )
    name_max_chars: int


class PlatformLimitsView(LimitsView):
    tts: TtsLimitsByModel
    chain: ChainLinksView
    reports: ReportLimitsView
    keys: KeyLimitsView
