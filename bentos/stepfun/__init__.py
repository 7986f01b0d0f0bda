"""StepFun voice provider: resilient httpx clients (sync + async); `emulator` is a compatible local server."""

from .client import AsyncStepFunClient, StepFunClient
from .errors import (
    ContentBlocked,
    InputRejected,
    NotFound,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StepFunError,
)
from .health import ProviderHealth
from .models import ClonedVoice, SpeechAudio, SpeechRequest, StepFile, SystemVoice, VoiceLabel, VoicePage
from .protocol import RetryEvent
from .settings import EmulatorSettings, ProviderSettings, provider_settings

__all__ = [
    "AsyncStepFunClient", "ClonedVoice", "ContentBlocked", "EmulatorSettings", "InputRejected", "NotFound",
    "ProviderConfigError", "ProviderConnectionError", "ProviderHealth", "ProviderProtocolError",
    "ProviderServerError", "ProviderSettings", "ProviderTimeout", "ProviderUnavailable", "RateLimited",
    "RetryEvent", "SpeechAudio", "SpeechRequest", "StepFile", "StepFunClient", "StepFunError", "SystemVoice",
    "VoiceLabel", "VoicePage", "provider_settings",
]  # fmt: skip
