"""Speech: POST /tts and the OpenAI-compatible POST /v1/audio/speech — streamed through, metered once — and
what a call will cost."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from bentos.api.deps import OPTIONAL_AUTH, CallerDep, OptionalCallerDep, SpeechDep, replayed
from bentos.api.schemas import MAX_SPEECH_TEXT_CHARS, OpenAISpeech, Speak
from bentos.api.views import QuoteView, error_responses
from bentos.core.accounts import Caller
from bentos.core.idempotency import StoredResponse
from bentos.core.speech import AUDIO_CONTENT_TYPES, SpeechOrder, TextToSpeech

router = APIRouter(tags=["speech"])


SPEECH_ERRORS = error_responses(400, 401, 402, 403, 404, 409, 410, 413, 422, 429, 451, 502, 503)
AUDIO: dict[int | str, dict[str, Any]] = {
    **SPEECH_ERRORS,
    200: {
        "description": "the audio, streamed as the provider produces it (`Idempotent-Replayed: true` on a "
        "replay); `X-Request-Id` names the metered call, `X-Usage-Chars` what it was metered for",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in AUDIO_CONTENT_TYPES.values()
        },
    },
}


async def _speak(speech: TextToSpeech, caller: Caller, order: SpeechOrder, request: Request) -> Response:
    reply = await speech.speak(caller, order, request.headers.get("idempotency-key"))
    if isinstance(reply, StoredResponse):
        return replayed(reply)
    headers = {"X-Request-Id": reply.request_id, "X-Usage-Chars": str(reply.chars)}
    return StreamingResponse(reply.chunks, media_type=reply.content_type, headers=headers)


@router.post("/tts", response_class=StreamingResponse, responses=AUDIO)
async def tts(body: Speak, request: Request, speech: SpeechDep, account: CallerDep) -> Response:
    """Speak `text` with persona `voice`; audio streams back as the provider produces it. Metered per request.
    A text over `tts.maxChars` is spoken sentence by sentence in parts and streamed as one audio (wav/mp3/pcm);
    if the provider fails part-way the body is cut and only the parts delivered are billed."""
    return await _speak(speech, account, body.order(), request)


@router.post("/v1/audio/speech", response_class=StreamingResponse, responses=AUDIO)
async def openai_speech(
    body: OpenAISpeech, request: Request, speech: SpeechDep, account: CallerDep
) -> Response:
    """OpenAI-compatible: `voice` is a persona id; any OpenAI SDK can call a persona."""
    return await _speak(speech, account, body.order(), request)


@router.get(
    "/voices/{voice_id}/quote",
    responses=error_responses(401, 404, 410, 422),
    openapi_extra=OPTIONAL_AUTH,
)
def quote(
    voice_id: str,
    chars: Annotated[int, Query(ge=1, le=MAX_SPEECH_TEXT_CHARS)],
    speech: SpeechDep,
    account: OptionalCallerDep,
) -> QuoteView:
    """What speaking `chars` characters with this persona costs — computed exactly as the call is metered."""
    return QuoteView.of(speech.quote(voice_id, chars, account))
