"""The project's Hydra configuration (configs/config.yaml), composed with command-line style overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def load_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """Compose configs/config.yaml with overrides (`db=postgres`, `data_dir=/tmp/x`, `encoder=seeded encoder.dim=512`)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides or []))


@dataclass(frozen=True)
class ServerSettings:
    """configs/server/default.yaml (here, not with the platform: `make run` reads it without importing the
    platform and its models)."""

    host: str = "127.0.0.1"
    port: int = 3000
    frontend_port: int = 8501
    public_base_url: str = "http://127.0.0.1:3000"
    max_upload_bytes: int = 20 * 1024 * 1024
    tts_max_chars: int = 1000
    # Longer texts (up to this) are split at sentences, spoken part by part and streamed as one audio.
    tts_long_max_chars: int = 20_000
    tts_long_concurrency: int = 2  # a long text's provider calls in flight (the limiter may allow fewer)
    # A long text's first part is at most this long: its first byte waits only for this much synthesis.
    tts_long_first_chars: int = 200
    # A realtime (WebSocket) session holds the price of this many characters before it starts.
    realtime_session_max_chars: int = 2000
    realtime_idle_s: float = 60.0  # a realtime session without a message either way is closed
    # Browser origins allowed to call the API cross-origin (e.g. a hosted front end); empty: none is.
    cors_origins: Sequence[str] = ()
    # An unfinished Idempotency-Key claim older than this (its process died) is taken over by a retry.
    idempotency_lease_s: float = 120.0
    # A sign-in session (the front end's cookie) ends this long after sign-in: a fixed expiry, never extended.
    session_ttl_s: float = 7 * 24 * 3600.0
    password_reset_ttl_s: float = 3600.0  # a password reset token works once, within this long
