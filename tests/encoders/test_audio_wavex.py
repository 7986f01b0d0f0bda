"""WAVE_FORMAT_EXTENSIBLE (WAVEX) intake: accepted exactly like plain WAV for PCM 16/24/32 and float32."""

from __future__ import annotations

import io
import struct
import tracemalloc
import uuid

import numpy as np
import pytest
import soundfile as sf

from encoders import AudioError, AudioSettings, load_audio
from encoders.audio import decode
from encoders.voices import VoiceSet

ACCEPTED_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT")


def _guid(tag: int) -> bytes:
    """The KSDATAFORMAT_SUBTYPE GUID of a WAVE_FORMAT_* tag, as stored in the file (little-endian fields)."""
    return uuid.UUID(f"{tag:08x}-0000-0010-8000-00aa00389b71").bytes_le


def _speech(voice_set: VoiceSet, channels: int) -> tuple[np.ndarray, int]:
    mono, rate = sf.read(voice_set.clips[0].wav_path, dtype="float32")
    if channels == 1:
        return mono, rate
    return np.stack([mono, mono * 0.5], axis=1), rate


def _write(samples: np.ndarray, rate: int, container: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=container, subtype=subtype)
    return buf.getvalue()


def _format_tag(data: bytes) -> int:
    assert data[12:16] == b"fmt "
    return int(struct.unpack_from("<H", data, 20)[0])


def _wavex_header(subformat: bytes, channels: int, rate: int, bits: int, data_size: int) -> bytes:
    """A hand-built RIFF/WAVE header: a 40-byte WAVEFORMATEXTENSIBLE fmt chunk, then a data chunk header."""
    align = channels * bits // 8
    mask = 0x4 if channels == 1 else 0x3
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, bits, mask)
    fmt += subformat
    assert len(fmt) == 40
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size)
    return b"RIFF" + struct.pack("<I", len(body) - 4 + data_size) + body


def _code(data: bytes, settings: AudioSettings | None = None) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(data, settings)
    assert info.value.message
    return info.value


@pytest.mark.parametrize("channels", [1, 2], ids=["mono", "stereo"])
@pytest.mark.parametrize("subtype", ACCEPTED_SUBTYPES)
def test_wavex_loads_like_the_plain_wav_of_the_same_audio(
    voice_set: VoiceSet, subtype: str, channels: int
) -> None:
    samples, rate = _speech(voice_set, channels)
    plain, wavex = _write(samples, rate, "WAV", subtype), _write(samples, rate, "WAVEX", subtype)
    assert _format_tag(wavex) == 0xFFFE and _format_tag(plain) != 0xFFFE
    with sf.SoundFile(io.BytesIO(wavex)) as f:
        assert (f.format, f.subtype) == ("WAVEX", subtype)

    raw_plain, rate_plain, _ = decode(plain, AudioSettings())
    raw_wavex, rate_wavex, fmt = decode(wavex, AudioSettings())
    assert fmt == "wav" and rate_wavex == rate_plain == rate
    assert raw_wavex.shape == raw_plain.shape == (len(samples), channels)
    np.testing.assert_allclose(raw_wavex, raw_plain, rtol=0, atol=1e-6)

    clip_plain, clip_wavex = load_audio(plain), load_audio(wavex)
    assert clip_wavex.format == "wav"
    assert clip_wavex.source_channels == channels and clip_wavex.source_rate == rate
    assert 5 <= clip_wavex.duration <= 8
    assert clip_wavex.duration == pytest.approx(clip_plain.duration)
    assert clip_wavex.source_duration == pytest.approx(len(samples) / rate)
    assert clip_wavex.samples.shape == clip_plain.samples.shape
    np.testing.assert_allclose(clip_wavex.samples, clip_plain.samples, rtol=0, atol=1e-5)
    assert clip_wavex.hints == clip_plain.hints
    assert clip_wavex.speech_seconds > 3


def test_hand_built_24bit_wavex_is_accepted(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set, 1)
    pcm = np.round(np.clip(samples, -1, 1 - 2**-23) * 2**23).astype("<i4")
    payload = b"".join(v.to_bytes(4, "little", signed=True)[:3] for v in pcm.tolist())
    data = _wavex_header(_guid(1), 1, rate, 24, len(payload)) + payload
    clip = load_audio(data)
    assert clip.format == "wav" and 5 <= clip.duration <= 8
    np.testing.assert_allclose(
        clip.samples, load_audio(_write(samples, rate, "WAV", "PCM_24")).samples, atol=1e-5
    )


@pytest.mark.parametrize("subtype", ["ULAW", "ALAW", "PCM_U8", "DOUBLE"])
def test_wavex_with_other_subtypes_is_unsupported(voice_set: VoiceSet, subtype: str) -> None:
    samples, rate = _speech(voice_set, 1)
    data = _write(samples, rate, "WAVEX", subtype)
    assert _format_tag(data) == 0xFFFE
    error = _code(data)
    assert error.code == "unsupported_format"
    assert "extensible WAV" in error.message


@pytest.mark.parametrize(
    ("subformat", "bits", "named"),
    [
        (_guid(0x0002), 4, "Microsoft ADPCM"),
        (_guid(0x0011), 4, "IMA ADPCM"),
        (_guid(0x0006), 8, "A-law"),
        (_guid(0x0007), 8, "µ-law"),
        (_guid(0x0001), 12, "12-bit PCM"),
        # Ambisonic B-format PCM: not the KSDATAFORMAT tail, refused by its GUID.
        (
            uuid.UUID("00000001-0721-11d3-8644-c8c1ca000000").bytes_le,
            16,
            "00000001-0721-11d3-8644-c8c1ca000000",
        ),
    ],
    ids=["ms-adpcm", "ima-adpcm", "alaw", "ulaw", "pcm12", "ambisonic"],
)
def test_hand_built_wavex_with_unsupported_subformat_is_refused(
    subformat: bytes, bits: int, named: str
) -> None:
    rate = 16000
    payload = bytes(rate * 7 * max(bits, 8) // 8)  # 7 s of (silent) audio, so only the format can refuse it
    error = _code(_wavex_header(subformat, 1, rate, bits, len(payload)) + payload)
    assert error.code == "unsupported_format"
    assert "extensible WAV" in error.message and named in error.message


def test_wavex_header_claiming_hours_is_rejected_without_allocating_hours() -> None:
    rate, hour_bytes = 48000, 48000 * 2 * 3 * 3600  # an hour of 24-bit stereo
    data = _wavex_header(_guid(1), 2, rate, 24, hour_bytes) + bytes(rate * 6)
    tracemalloc.start()
    try:
        error = _code(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == "corrupt_audio"
    assert peak < 20 * 1024 * 1024  # an hour of float32 stereo would be 1.4 GB


def test_wavex_written_by_soundfile_with_a_forged_data_size_is_corrupt(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set, 2)
    data = bytearray(_write(samples, rate, "WAVEX", "PCM_24"))
    pos = data.index(b"data")
    struct.pack_into("<I", data, pos + 4, 0x7FFFFFF0)
    assert _code(bytes(data)).code == "corrupt_audio"


def test_truncated_wavex_is_corrupt(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set, 1)
    data = _write(samples, rate, "WAVEX", "PCM_24")
    assert _code(data[: len(data) // 2]).code == "corrupt_audio"


def test_wavex_with_a_short_extensible_fmt_chunk_is_corrupt() -> None:
    rate = 16000
    fmt = struct.pack("<HHIIHHH", 0xFFFE, 1, rate, rate * 2, 2, 16, 0)  # cbSize 0: no SubFormat
    payload = bytes(rate * 2 * 7)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload))
    data = b"RIFF" + struct.pack("<I", len(body) + len(payload)) + body + payload
    assert _code(data).code == "corrupt_audio"


def test_wavex_is_held_to_the_byte_cap(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set, 2)
    data = _write(samples, rate, "WAVEX", "FLOAT")
    assert _code(data, AudioSettings(max_bytes=len(data) - 1)).code == "file_too_large"
    assert load_audio(data, AudioSettings(max_bytes=len(data))).format == "wav"


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_wavex_decode_stops_at_the_decode_cap(subtype: str) -> None:
    rate = 16000
    tone = (0.1 * np.sin(np.arange(rate * 70) * 2 * np.pi * 220 / rate)).astype(np.float32)  # 70 s
    data = _write(tone, rate, "WAVEX", subtype)
    samples, got_rate, fmt = decode(data, AudioSettings())
    assert (fmt, got_rate) == ("wav", rate)
    assert samples.shape == (60 * rate, 1)
