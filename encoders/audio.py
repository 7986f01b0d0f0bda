"""Audio intake: decode an upload by its content, validate it, and preprocess it for the encoders.

One decoder for the whole platform. Every rejection is an `AudioError` with a stable `.code`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio
from scipy.signal import lfilter

from encoders.vad import speech_seconds

AudioFormat = Literal["wav", "mp3"]
ErrorCode = Literal[
    "file_too_large", "unsupported_format", "corrupt_audio", "audio_too_short", "audio_too_long", "no_speech"
]
SUPPORTED_RATES = (16000, 22050, 24000)
# Source sample rates accepted (Hz): telephone to studio. Outside them a header is forged or the file is not speech.
SOURCE_RATE_RANGE = (4000, 384000)
# torchaudio's sinc kernel is [to/g, from/g + 2·width] floats for g = gcd(from, to): an odd rate (1 999 993 Hz)
# would need 256 GB. A source rate whose reduced ratio is above this is resampled as if it were the nearest
# multiple of RATE_SNAP_HZ (at most 0.6 % faster or slower: nothing a speaker encoder hears).
MAX_REDUCED_RATE = 4000
RATE_SNAP_HZ = 50


class AudioError(ValueError):
    """A rejected upload. code: stable machine-readable reason; message: for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"AudioError({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class AudioSettings:
    """Intake rules (configs/audio/default.yaml).

    Durations are measured after trimming leading/trailing silence; `tolerance_seconds` absorbs the trimmer's
    frame granularity and a breath at either end, so a 4.9 s clip passes a 5 s minimum but a 4.5 s one does not.
    """

    max_bytes: int = 20 * 1024 * 1024
    min_seconds: float = 5.0
    max_seconds: float = 10.0
    tolerance_seconds: float = 0.25
    # Never decode more than this, whatever a header claims: bounds memory for hostile files.
    max_decode_seconds: float = 60.0
    target_rate: int = 16000
    trim_threshold_db: float = -40.0  # relative to the loudest 20 ms frame
    trim_pad_seconds: float = 0.1
    target_lufs: float = -23.0
    min_speech_seconds: float = 1.5
    min_speech_ratio: float = 0.3
    low_rate_hz: int = 16000
    low_level_dbfs: float = -30.0

    def __post_init__(self) -> None:
        if self.target_rate not in SUPPORTED_RATES:
            raise ValueError(f"target_rate must be one of {SUPPORTED_RATES}, got {self.target_rate}")


@dataclass(frozen=True)
class AudioClip:
    """A validated, preprocessed clip.

    samples: float32 [n], mono, at `sample_rate` Hz (settings.target_rate), silence-trimmed, loudness-normalized.
    duration: seconds of `samples`. source_*: what was uploaded (before preprocessing).
    """

    samples: np.ndarray
    sample_rate: int
    duration: float
    format: str
    source_rate: int
    source_channels: int
    source_duration: float
    source_sha256: str
    audio_sha256: str
    speech_seconds: float
    hints: list[str] = field(default_factory=list)

    def report(self) -> dict[str, object]:
        """A JSON-ready summary (no samples)."""
        return {
            "format": self.format,
            "duration": round(self.duration, 3),
            "sampleRate": self.sample_rate,
            "sourceSampleRate": self.source_rate,
            "channels": self.source_channels,
            "sourceDuration": round(self.source_duration, 3),
            "speechSeconds": round(self.speech_seconds, 3),
            "sourceSha256": self.source_sha256,
            "audioSha256": self.audio_sha256,
            "hints": list(self.hints),
        }


def samples_sha256(samples: np.ndarray) -> str:
    """sha256 of float32 little-endian bytes of samples [n]."""
    return hashlib.sha256(np.ascontiguousarray(samples, dtype="<f4").tobytes()).hexdigest()


def sniff_format(data: bytes) -> AudioFormat | None:
    """The container from magic bytes alone: RIFF/WAVE, or MP3 (ID3 tag or an MPEG audio frame sync)."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3":
        return "mp3"
    # MPEG-1/2/2.5 layer III frame header: 11 sync bits, layer bits == 01.
    if len(data) >= 4 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06) == 0x02:
        return "mp3"
    return None


# WAVE_FORMAT_* tags (mmreg.h). An EXTENSIBLE fmt chunk carries the real format in a SubFormat GUID whose
# first four bytes are the tag (little-endian) and whose other twelve are the fixed KSDATAFORMAT_SUBTYPE tail.
_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_SUBFORMAT_GUID_TAIL = uuid.UUID("00000001-0000-0010-8000-00aa00389b71").bytes_le[4:]
# Extensible subformats accepted, as (tag, container bits): the same encodings plain WAV is promised in.
_WAVEX_ACCEPTED = {
    (_WAVE_FORMAT_PCM, 16),
    (_WAVE_FORMAT_PCM, 24),
    (_WAVE_FORMAT_PCM, 32),
    (_WAVE_FORMAT_IEEE_FLOAT, 32),
}
# libsndfile's subtype names for the same set: checked again after it opens the file.
_WAVEX_SUBTYPES = frozenset({"PCM_16", "PCM_24", "PCM_32", "FLOAT"})
_WAVE_FORMAT_NAMES = {
    0x0001: "PCM",
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MPEG layer III",
}


@dataclass(frozen=True)
class _WavFmt:
    """The fmt chunk of a WAV. tag: WAVE_FORMAT_*; subformat: the SubFormat GUID (EXTENSIBLE only)."""

    tag: int
    channels: int
    bits: int
    subformat: bytes | None = None


def _parse_fmt(body: bytes) -> _WavFmt:
    if len(body) < 16:
        raise AudioError("corrupt_audio", "the WAV format chunk is too short")
    tag, channels, _rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
    if tag != _WAVE_FORMAT_EXTENSIBLE:
        return _WavFmt(tag, channels, bits)
    # WAVEFORMATEXTENSIBLE: cbSize (≥ 22), valid bits, channel mask, SubFormat GUID.
    if len(body) < 40 or struct.unpack_from("<H", body, 16)[0] < 22:
        raise AudioError("corrupt_audio", "the extensible WAV format chunk is too short")
    return _WavFmt(tag, channels, bits, bytes(body[24:40]))


def _check_wav_structure(data: bytes) -> _WavFmt | None:
    """Reject a WAV whose chunks claim more data than the file holds (truncated or forged headers).

    Returns the fmt chunk when it comes before the data chunk (as every writer puts it), else None.
    """
    pos = 12
    wav_fmt: _WavFmt | None = None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk_id == b"data":
            available = len(data) - (pos + 8)
            # 0 and 0xFFFFFFFF mean "unknown length" (streamed writers): decode what is there.
            if size not in (0, 0xFFFFFFFF) and size > available:
                raise AudioError(
                    "corrupt_audio",
                    f"the WAV header claims {size} bytes of audio but the file holds {available}: "
                    "it is truncated or its header is wrong",
                )
            return wav_fmt
        if chunk_id == b"fmt " and wav_fmt is None:
            if size > len(data) - (pos + 8):
                raise AudioError("corrupt_audio", "the WAV format chunk runs past the end of the file")
            wav_fmt = _parse_fmt(data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    raise AudioError("corrupt_audio", "the WAV file has no audio data chunk")


def _check_extensible(wav_fmt: _WavFmt) -> None:
    """Accept WAVE_FORMAT_EXTENSIBLE only for PCM 16/24/32-bit and 32-bit float SubFormats."""
    guid = wav_fmt.subformat
    if guid is None:
        return
    if guid[4:] != _SUBFORMAT_GUID_TAIL:
        raise AudioError(
            "unsupported_format",
            f"extensible WAV with subformat {uuid.UUID(bytes_le=guid)} is not accepted; "
            "use 16/24/32-bit PCM or 32-bit float WAV",
        )
    sub_tag = struct.unpack_from("<I", guid)[0]
    if (sub_tag, wav_fmt.bits) not in _WAVEX_ACCEPTED:
        name = _WAVE_FORMAT_NAMES.get(sub_tag, f"format 0x{sub_tag:04x}")
        raise AudioError(
            "unsupported_format",
            f"extensible WAV in {wav_fmt.bits}-bit {name} is not accepted; "
            "use 16/24/32-bit PCM or 32-bit float WAV",
        )


def decode(data: bytes, settings: AudioSettings) -> tuple[np.ndarray, int, AudioFormat]:
    """Decode bytes → (samples float32 [n, channels], rate, format), reading at most max_decode_seconds."""
    if not data:
        raise AudioError("corrupt_audio", "the file is empty")
    if len(data) > settings.max_bytes:
        raise AudioError(
            "file_too_large", f"the file is {len(data)} bytes; the limit is {settings.max_bytes} bytes"
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise AudioError(
            "unsupported_format", "only WAV and MP3 audio are accepted (decided from the content)"
        )
    if fmt == "wav":
        wav_fmt = _check_wav_structure(data)
        if wav_fmt is not None:
            _check_extensible(wav_fmt)
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            # WAVEX: WAVE_FORMAT_EXTENSIBLE (sox, DAWs); its subtype is checked in case no fmt came first.
            accepted = ("WAV", "WAVEX") if fmt == "wav" else ("MP3",)
            if f.format not in accepted:
                raise AudioError("unsupported_format", f"the content is {f.format}, not WAV or MP3")
            if f.format == "WAVEX" and f.subtype not in _WAVEX_SUBTYPES:
                raise AudioError(
                    "unsupported_format",
                    f"extensible WAV in {f.subtype} is not accepted; use 16/24/32-bit PCM or 32-bit float WAV",
                )
            if f.samplerate <= 0 or f.channels <= 0 or f.channels > 8:
                raise AudioError("corrupt_audio", "the audio header is inconsistent")
            low, high = SOURCE_RATE_RANGE
            if not low <= f.samplerate <= high:
                raise AudioError(
                    "unsupported_format",
                    f"a sample rate of {f.samplerate} Hz is not accepted ({low}–{high} Hz)",
                )
            cap = int(settings.max_decode_seconds * f.samplerate)
            samples = f.read(frames=cap, dtype="float32", always_2d=True)
            rate = int(f.samplerate)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, struct.error) as exc:
        raise AudioError("corrupt_audio", f"the {fmt.upper()} data cannot be decoded") from exc
    if samples.shape[0] == 0:
        raise AudioError("corrupt_audio", f"the {fmt.upper()} file contains no audio frames")
    if not np.all(np.isfinite(samples)):
        raise AudioError("corrupt_audio", "the audio contains invalid (NaN or infinite) samples")
    return samples, rate, fmt


def trim_silence(mono: np.ndarray, rate: int, settings: AudioSettings) -> np.ndarray:
    """Drop leading/trailing frames quieter than trim_threshold_db below the loudest 20 ms frame.

    mono: float32 [n] → float32 [m], m ≤ n (empty when the whole clip is below the absolute floor).
    """
    hop = max(1, rate // 50)
    n_frames = len(mono) // hop
    if n_frames == 0:
        return mono[:0]
    frames = mono[: n_frames * hop].reshape(n_frames, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    threshold = max(float(rms.max()) * 10 ** (settings.trim_threshold_db / 20), 10 ** (-60 / 20))
    loud = np.flatnonzero(rms > threshold)
    if loud.size == 0:
        return mono[:0]
    pad = int(settings.trim_pad_seconds * rate)
    start = max(0, int(loud[0]) * hop - pad)
    end = min(len(mono), (int(loud[-1]) + 1) * hop + pad)
    return mono[start:end]


@functools.lru_cache(maxsize=16)
def _resampler(from_rate: int, to_rate: int) -> torchaudio.transforms.Resample:
    # The windowed-sinc kernel depends only on the two rates: build it once, not per clip.
    return torchaudio.transforms.Resample(from_rate, to_rate)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 [n] at from_rate → float32 [m] at to_rate (torchaudio's windowed-sinc resampler)."""
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    if from_rate // math.gcd(from_rate, to_rate) > MAX_REDUCED_RATE:
        from_rate = max(RATE_SNAP_HZ, round(from_rate / RATE_SNAP_HZ) * RATE_SNAP_HZ)
    with torch.inference_mode():
        out = _resampler(from_rate, to_rate)(
            torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        )
    return out.numpy().astype(np.float32, copy=False)


@functools.lru_cache(maxsize=16)
def _k_weighting(rate: int) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    """BS.1770 K-weighting at `rate` as two biquads (b, a): a +4 dB high shelf at 1.5 kHz, a 38 Hz high-pass
    (the coefficients torchaudio's treble_biquad / highpass_biquad compute)."""
    w0 = 2 * math.pi * 1500.0 / rate
    gain = 10 ** (4.0 / 40)
    alpha = math.sin(w0) / 2 * math.sqrt(2)
    t1, t2, t3 = 2 * math.sqrt(gain) * alpha, (gain - 1) * math.cos(w0), (gain + 1) * math.cos(w0)
    shelf = (
        [gain * ((gain + 1) + t2 + t1), -2 * gain * ((gain - 1) + t3), gain * ((gain + 1) + t2 - t1)],
        [(gain + 1) - t2 + t1, 2 * ((gain - 1) - t3), (gain + 1) - t2 - t1],
    )
    w0 = 2 * math.pi * 38.0 / rate
    alpha, cos = math.sin(w0) / 2 / 0.5, math.cos(w0)
    highpass = ([(1 + cos) / 2, -1 - cos, (1 + cos) / 2], [1 + alpha, -2 * cos, 1 - alpha])
    return shelf, highpass


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS of float32 [n] mono (ITU-R BS.1770-4: K-weighting, 400 ms blocks with 75 %
    overlap, −70 LUFS absolute and −10 LU relative gates); NaN when no block passes the gates.

    The same measure as torchaudio.functional.loudness (whose filters clamp to ±1 too), with scipy's IIR
    filter instead of torchaudio's per-sample loop: ~1 ms instead of ~3 ms for 8 s.
    """
    (shelf_b, shelf_a), (hp_b, hp_a) = _k_weighting(rate)
    weighted = np.clip(lfilter(shelf_b, shelf_a, np.asarray(samples, dtype=np.float64)), -1.0, 1.0)
    weighted = np.clip(lfilter(hp_b, hp_a, weighted), -1.0, 1.0)
    block = round(0.4 * rate)
    if len(weighted) < block:
        return float("nan")
    step = round(block * 0.25)
    cumulative = np.concatenate([[0.0], np.cumsum(weighted * weighted)])
    starts = np.arange(0, len(weighted) - block + 1, step)
    energy = (cumulative[starts + block] - cumulative[starts]) / block
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(energy)
    gated = block_lufs > -70.0
    if not gated.any():
        return float("nan")
    relative_gate = -0.691 + 10 * np.log10(energy[gated].mean()) - 10
    gated &= block_lufs > relative_gate
    return float(-0.691 + 10 * np.log10(energy[gated].mean()))


def normalize_loudness(samples: np.ndarray, rate: int, target_lufs: float) -> np.ndarray:
    """Scale float32 [n] to target_lufs integrated loudness (ITU-R BS.1770), peak-limited to 0.99."""
    lufs = integrated_loudness(samples, rate)
    gain = 10 ** ((target_lufs - lufs) / 20) if np.isfinite(lufs) else 1.0
    peak = float(np.max(np.abs(samples))) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (samples * gain).astype(np.float32)


def _hints(raw: np.ndarray, rate: int, mono: np.ndarray, settings: AudioSettings) -> list[str]:
    hints = []
    if rate < settings.low_rate_hz:
        hints.append(
            f"low_sample_rate: {rate} Hz is under {settings.low_rate_hz} Hz; voice quality will suffer"
        )
    if raw.shape[1] > 1:
        hints.append(f"stereo: {raw.shape[1]} channels were mixed down to mono")
    clipped = float(np.mean(np.abs(raw) >= 0.999))
    if clipped > 0.001:
        hints.append(f"clipping: {clipped:.1%} of samples are at full scale; record a little quieter")
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if 0 < peak < 10 ** (settings.low_level_dbfs / 20):
        hints.append(f"low_level: peak {20 * np.log10(peak):.0f} dBFS; record closer to the microphone")
    return hints


def load_audio(source: bytes | str | Path, settings: AudioSettings | None = None) -> AudioClip:
    """Decode, validate and preprocess an upload. source: the raw file bytes, or a path to read.

    Raises AudioError (file_too_large, unsupported_format, corrupt_audio, no_speech, audio_too_short,
    audio_too_long). Returns an AudioClip with float32 [n] mono samples at settings.target_rate.
    """
    settings = settings or AudioSettings()
    if isinstance(source, str | Path):
        path = Path(source)
        if path.stat().st_size > settings.max_bytes:
            raise AudioError(
                "file_too_large",
                f"the file is {path.stat().st_size} bytes; the limit is {settings.max_bytes}",
            )
        data = path.read_bytes()
    else:
        data = bytes(source)
    raw, rate, fmt = decode(data, settings)
    mono = raw.mean(axis=1).astype(np.float32) if raw.shape[1] > 1 else raw[:, 0].copy()
    source_duration = len(mono) / rate
    trimmed = trim_silence(mono, rate, settings)
    if trimmed.size == 0:
        raise AudioError("no_speech", "the recording is silent")
    duration = len(trimmed) / rate
    if duration < settings.min_seconds - settings.tolerance_seconds:
        raise AudioError(
            "audio_too_short",
            f"{duration:.1f} s of sound after trimming silence; at least {settings.min_seconds:g} s is needed",
        )
    if duration > settings.max_seconds + settings.tolerance_seconds:
        raise AudioError(
            "audio_too_long",
            f"{duration:.1f} s of sound after trimming silence; at most {settings.max_seconds:g} s is accepted",
        )
    # The VAD sees level-normalized audio: a quiet but clear voice is speech, not silence.
    at_16k = normalize_loudness(resample(trimmed, rate, 16000), 16000, settings.target_lufs)
    speech = speech_seconds(at_16k)
    if speech < min(settings.min_speech_seconds, settings.min_speech_ratio * duration):
        raise AudioError("no_speech", f"no speech found (only {speech:.1f} s sound like a voice)")
    out = at_16k
    if settings.target_rate != 16000:
        out = normalize_loudness(
            resample(trimmed, rate, settings.target_rate), settings.target_rate, settings.target_lufs
        )
    return AudioClip(
        samples=out,
        sample_rate=settings.target_rate,
        duration=len(out) / settings.target_rate,
        format=fmt,
        source_rate=rate,
        source_channels=int(raw.shape[1]),
        source_duration=source_duration,
        source_sha256=hashlib.sha256(data).hexdigest(),
        audio_sha256=samples_sha256(out),
        speech_seconds=speech,
        hints=_hints(raw, rate, mono, settings),
    )
