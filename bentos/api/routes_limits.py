"""What a client must know before it calls: every limit the server checks, the price terms, the pipeline states."""

from __future__ import annotations

from fastapi import APIRouter

from bentos.api.deps import PlatformDep
from bentos.api.views import (
    PersonaLimitsView,
    PipelineView,
    PriceTermsView,
    TtsLimits,
    UploadLimitsView,
)
from bentos.api.views_limits import (
    ChainLinksView,
    KeyLimitsView,
    PlatformLimitsView,
    ReportLimitsView,
    TtsLimitsByModel,
)
from bentos.billing.reports import price_terms
from bentos.chain.settings import money_on_chain
from bentos.core.accounts import KEY_NAME_MAX_CHARS
from bentos.core.intake import upload_limits
from bentos.core.personas import PIPELINE, persona_limits
from bentos.core.reports import DETAILS_MAX_CHARS, ReportReason
from bentos.core.scopes import SCOPES
from bentos.core.speech import speech_limits
from bentos.stepfun.labels import GLOSSES, labels_by_model

router = APIRouter(tags=["limits"])


@router.get("/v1/limits")
def limits(platform: PlatformDep) -> PlatformLimitsView:
    """The server's real limits (no key needed): read these instead of copying numbers into a client."""
    server, prices = platform.server, platform.prices
    speech = speech_limits(
        server.tts_max_chars, prices, server.tts_long_max_chars, server.realtime_session_max_chars
    )
    tts = TtsLimits.of(speech).model_dump()
    return PlatformLimitsView(
        tts=TtsLimitsByModel(**tts, model_labels=labels_by_model(speech.models), label_glosses=dict(GLOSSES)),
        upload=UploadLimitsView.of(upload_limits(server.max_upload_bytes, platform.audio)),
        persona=PersonaLimitsView.of(persona_limits(prices)),
        prices=PriceTermsView.of(price_terms(prices)),
        pipeline=PipelineView.of(PIPELINE),
        chain=ChainLinksView(explorer_url=money_on_chain(platform.chain_settings).explorer_url),
        reports=ReportLimitsView(reasons=list(ReportReason), details_max_chars=DETAILS_MAX_CHARS),
        keys=KeyLimitsView(scopes=list(SCOPES), name_max_chars=KEY_NAME_MAX_CHARS),
    )
