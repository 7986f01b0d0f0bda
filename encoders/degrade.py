"""Recording conditions made offline: generated noise (white, pink, brown, babble), synthetic rooms, phone band
limits and codec round-trips (MP3, Opus) — for robustness evaluation and distillation training, no downloads.

clip = degrade(clean, EVAL_CONDITIONS["mp3-babble20"], rng, babble_pool)   # float32 [n'] at 16 kHz

Every function takes and returns float32 mono at 16 kHz unless it says otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from encoders.audio import resample

RATE = 16000
NOISE_KINDS = ("white", "pink", "brown", "babble")


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise float32 [n]: 'white' (flat), 'pink' (1/f power) or 'brown' (1/f² power)."""
    white = rng.standard_normal(n)
    if kind != "white":
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / RATE)
        freqs[0] = freqs[1] if n > 1 else 1.0
        exponent = {"pink": 0.5, "brown": 1.0}[kind]
        white = np.fft.irfft(spectrum / freqs**exponent, n)
    return (white / (np.std(white) or 1.0)).astype(np.float32)


def babble_noise(
    pool: Sequence[np.ndarray], n: int, rng: np.random.Generator, talkers: int = 5
) -> np.ndarray:
    """Unit-power babble float32 [n]: `talkers` random stretches of speech from `pool` (float32 [m] each),
    each at its own loudness, summed."""
    out = np.zeros(n, dtype=np.float64)
    for _ in range(talkers):
        clip = pool[int(rng.integers(0, len(pool)))]
        reps = int(np.ceil(n / max(1, clip.shape[0]))) + 1
        long = np.tile(clip, reps)
        start = int(rng.integers(0, long.shape[0] - n + 1))
        piece = long[start : start + n].astype(np.float64)
        out += piece / (np.std(piece) or 1.0) * rng.uniform(0.5, 1.0)
    return (out / (np.std(out) or 1.0)).astype(np.float32)


def room_impulse_response(
    rt60: float, rng: np.random.Generator, direct_to_reverb_db: float = 3.0
) -> np.ndarray:
    """A synthetic room impulse response float32 [~rt60 s]: a direct path followed by exponentially decaying
    noise (60 dB down after `rt60` s) after a few ms of early-reflection gap; direct path at unit gain."""
    length = max(int(rt60 * RATE), 64)
    t = np.arange(length) / RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
    tail[: int(0.003 * RATE)] = 0.0
    energy = float(np.sum(tail**2)) or 1.0
    tail *= np.sqrt(10 ** (-direct_to_reverb_db / 10) / energy)
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """samples convolved with `rir` (float32 [k]) → float32 [n], same length and RMS as the input."""
    wet = fftconvolve(samples.astype(np.float64), rir.astype(np.float64))[: samples.shape[0]]
    gain = (np.std(samples) or 1.0) / (np.std(wet) or 1.0)
    return (wet * gain).astype(np.float32)


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """samples + unit-power `noise` (float32 [n]) scaled to `snr_db` below the signal's mean power."""
    power = float(np.mean(samples.astype(np.float64) ** 2)) or 1e-8
    return (samples + noise[: samples.shape[0]] * np.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)


def codec_round_trip(samples: np.ndarray, codec: str) -> np.ndarray:
    """Encode with libsndfile ('mp3' or 'opus') and decode back → float32 [n'] at 16 kHz."""
    buffer = io.BytesIO()
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    scaled = samples / peak * 0.9 if peak > 0.99 else samples  # codecs clip at full scale
    if codec == "mp3":
        sf.write(buffer, scaled, RATE, format="MP3")
    elif codec == "opus":
        sf.write(buffer, scaled, RATE, format="OGG", subtype="OPUS")
    else:
        raise ValueError(f"unknown codec {codec!r}")
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return np.ascontiguousarray(decoded, dtype=np.float32)


def phone_band(samples: np.ndarray) -> np.ndarray:
    """Narrowband telephone: through 8 kHz and back → float32 [n] at 16 kHz with nothing above 4 kHz."""
    return resample(resample(samples, RATE, 8000), 8000, RATE)[: samples.shape[0]]


@dataclass(frozen=True)
class Condition:
    """A recording condition: optional room (rt60 s), optional noise (kind at snr_db), optional phone band and
    codec, applied in that order."""

    name: str
    noise: str | None = None
    snr_db: float = 20.0
    rt60: float | None = None
    codec: str | None = None
    phone: bool = False


# The evaluation table: the clean / MP3 / MP3 + 20 dB noise, noise as white, babble and a room (reverb
# plus brown "room tone").
EVAL_CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("clean"),
        Condition("mp3", codec="mp3"),
        Condition("mp3-white20", noise="white", codec="mp3"),
        Condition("mp3-babble20", noise="babble", codec="mp3"),
        Condition("mp3-room20", noise="brown", rt60=0.5, codec="mp3"),
    )
}


def degrade(
    samples: np.ndarray,
    condition: Condition,
    rng: np.random.Generator,
    babble_pool: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One clip (float32 [n] at 16 kHz) recorded under `condition` → float32 [n'] at 16 kHz."""
    out = np.asarray(samples, dtype=np.float32)
    if condition.rt60:
        out = reverberate(out, room_impulse_response(condition.rt60, rng))
    if condition.noise:
        if condition.noise == "babble":
            if not babble_pool:
                raise ValueError("babble needs a pool of speech clips")
            noise = babble_noise(babble_pool, out.shape[0], rng)
        else:
            noise = colored_noise(out.shape[0], condition.noise, rng)
        out = add_noise(out, noise, condition.snr_db)
    if condition.phone:
        out = phone_band(out)
    if condition.codec:
        out = codec_round_trip(out, condition.codec)
    return out


def random_condition(rng: np.random.Generator, snr_range: tuple[float, float] = (0.0, 30.0)) -> Condition:
    """A training condition: each of room, noise, phone band and codec drawn independently."""
    noise = str(rng.choice(NOISE_KINDS)) if rng.random() < 0.8 else None
    return Condition(
        name="random",
        noise=noise,
        snr_db=float(rng.uniform(*snr_range)),
        rt60=float(rng.uniform(0.2, 0.9)) if rng.random() < 0.4 else None,
        codec=str(rng.choice(["mp3", "opus"])) if rng.random() < 0.6 else None,
        phone=bool(rng.random() < 0.2),
    )
