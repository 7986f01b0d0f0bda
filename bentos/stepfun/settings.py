"""Provider settings (which server, which key, how patient) and the cheap constructor Hydra configs target.

Building settings connects to nothing and starts nothing: the platform decides when to start an emulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

STEPFUN_BASE_URL = "https://api.stepfun.com/v1"
EMULATOR_DEV_KEY = "emulator-local-key"  # fixed local key of the loopback emulator; not a secret


class EmulatorSettings(BaseModel):
    """How to run the local StepFun-compatible emulator (rate limits default to StepFun's V0 tier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8765
    state_dir: Path = Path("var/stepfun-emulator")
    api_keys: tuple[str, ...] = (EMULATOR_DEV_KEY,)
    rpm: int = Field(default=10, ge=0)  # 0: unlimited
    concurrency: int = Field(default=5, ge=0)  # 0: unlimited
    latency_ms: int = Field(default=0, ge=0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # The voice engine's base-voice statistics; None: $VOXPERSONA_VOICE_CACHE, else the machine-wide
    # ${XDG_CACHE_HOME:-~/.cache}/voxpersona/voice-engine that `make setup` fills (see emulator/stats_cache.py).
    cache_dir: Path | None = None

    def cli_args(self) -> list[str]:
        """The `python -m bentos.stepfun.emulator` arguments for these settings."""
        args = ["--host", self.host, "--port", str(self.port), "--state-dir", str(self.state_dir)]
        for key in self.api_keys:
            args += ["--api-key", key]
        args += ["--rpm", str(self.rpm), "--concurrency", str(self.concurrency)]
        args += ["--latency-ms", str(self.latency_ms), "--error-rate", str(self.error_rate)]
        if self.cache_dir is not None:
            args += ["--cache-dir", str(self.cache_dir)]
        return args

    def __repr__(self) -> str:
        return f"EmulatorSettings(host={self.host!r}, port={self.port}, state_dir={str(self.state_dir)!r})"


class TierSettings(BaseModel):
    """The provider account's rate-limit tier (StepFun counts per API key) and how this process shares it.

    The limiter in front of the client (`limiter.py`) enforces it, so the provider's own 429 is the exception,
    not the rule. It is per process: with N platform replicas on one key, give each replica rpm/N and
    concurrency/N (rounded down) of the account's tier.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rpm: int = Field(default=0, ge=0)  # requests per minute; 0: unlimited
    concurrency: int = Field(default=0, ge=0)  # requests in flight; 0: unlimited
    # The provider counts a request when it arrives, we when it leaves: a slightly longer window than its 60 s
    # keeps us from sending the call that its window still counts.
    window_s: float = Field(default=61.0, gt=0)
    # The most of the tier's RPM and concurrency one caller (an account; the pipeline is one caller) may hold,
    # so that a burst from one leaves room for the others.
    caller_share: float = Field(default=0.5, gt=0, le=1)
    interactive_wait_s: float = Field(default=2.0, ge=0)  # TTS waits this long for a slot, then 429
    background_wait_s: float = Field(default=65.0, ge=0)  # pipeline calls may wait out a whole window

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.concurrency)


class ProviderSettings(BaseModel):
    """Client settings. api_key is a SecretStr: never shown by repr/str/model_dump_json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "stepfun"
    base_url: str = STEPFUN_BASE_URL
    api_key: SecretStr | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)  # synthesis of 1000 chars can take a while
    write_timeout_s: float = Field(default=30.0, gt=0)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=4, ge=1)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_cap_s: float = Field(default=8.0, ge=0)
    # A Retry-After longer than this is not slept through: the error goes up for a queue to reschedule.
    retry_after_max_s: float = Field(default=30.0, ge=0)
    retry_deadline_s: float = Field(default=120.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_timeout_s: float = Field(default=30.0, gt=0)
    clone_model: str = "step-tts-2"
    speech_model: str = "step-tts-2"
    chat_model: str = "step-1-8k"  # POST /v1/chat/completions (persona conversation)
    default_voice: str = "cixingnansheng"
    response_format: str = "mp3"
    tier: TierSettings | None = None  # None: no platform-side limiter
    emulator: EmulatorSettings | None = None

    @property
    def secret(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None


def provider_settings(**fields: Any) -> ProviderSettings:
    """Hydra `_target_` for configs/provider/*.yaml: validates fields, touches no network or process."""
    return ProviderSettings.model_validate(fields)
