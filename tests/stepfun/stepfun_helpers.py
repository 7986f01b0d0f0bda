"""Helpers shared by the StepFun tests: settings with small backoff and synthesised reference audio."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from bentos.stepfun import ProviderSettings
from encoders.synthetic import available_voices, synthesize

KEY = "emulator-local-key"
REFERENCE_TEXT = "This is a reference recording of my voice, spoken clearly for cloning purposes today."


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def reference_wav(voice_id: str = "flite:awb", text: str = REFERENCE_TEXT) -> bytes:
    voice = next(v for v in available_voices() if v.id == voice_id)
    samples, rate = synthesize(voice, text)
    return wav_bytes(samples, rate)


def fast_settings(base_url: str, **overrides: object) -> ProviderSettings:
    """Small backoff so retry tests stay fast."""
    fields: dict[str, object] = {
        "base_url": base_url, "api_key": KEY, "backoff_base_s": 0.01, "backoff_cap_s": 0.05,
        "read_timeout_s": 60.0, "max_attempts": 4, "breaker_fail_max": 50,
    }  # fmt: skip
    fields.update(overrides)
    return ProviderSettings.model_validate(fields)
