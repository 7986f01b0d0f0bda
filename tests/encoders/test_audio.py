"""Audio intake on real files made here: every rejection code, and the accepted shapes of upload."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from encoders import AudioError, AudioSettings, load_audio
from encoders.audio import resample
from encoders.synthetic import available_voices, synthesize
from encoders.voices import VoiceSet


def _speech(voice_set: VoiceSet, index: int = 0) -> tuple[np.ndarray, int]:
    data, rate = sf.read(voice_set.clips[index].wav_path, dtype="float32")
    return data, rate


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _code(source: bytes | Path, settings: AudioSettings | None = None) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(source, settings)
    assert info.value.message  # a human-readable reason always comes with the code
    return info.value.code


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert _code(path) == "corrupt_audio"


def test_text_renamed_wav_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio\n" * 50)
    assert _code(path) == "unsupported_format"


def test_flac_is_unsupported_even_when_named_mp3(tmp_path: Path, voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    path = tmp_path / "voice.mp3"
    sf.write(path, samples, rate, format="FLAC")
    assert _code(path) == "unsupported_format"


def test_truncated_wav_is_corrupt(voice_set: VoiceSet) -> None:
    data = voice_set.clips[0].wav_path.read_bytes()
    assert _code(data[: len(data) // 2]) == "corrupt_audio"


def test_wav_header_claiming_hours_is_rejected_without_allocating_hours() -> None:
    rate, hour_bytes = 16000, 16000 * 2 * 3600
    header = b"RIFF" + struct.pack("<I", 36 + hour_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", hour_bytes)
    data = header + np.zeros(rate, np.int16).tobytes()
    tracemalloc.start()
    try:
        assert _code(data) == "corrupt_audio"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # an hour of float32 would be 230 MB


def test_corrupted_mp3_is_corrupt(voice_set: VoiceSet) -> None:
    data = bytearray(voice_set.clips[0].mp3_path.read_bytes())
    rng = np.random.default_rng(7)
    garbage = rng.integers(0, 256, size=len(data) - 3, dtype=np.uint8).tobytes()
    # Keep the ID3 magic so the sniffer says MP3; everything after it is noise.
    assert _code(b"ID3" + garbage) == "corrupt_audio"


def test_oversized_file_is_rejected_before_decoding(tmp_path: Path) -> None:
    settings = AudioSettings(max_bytes=1_000_000)
    path = tmp_path / "big.wav"
    sf.write(path, np.zeros(16000 * 40, np.float32), 16000, subtype="PCM_16")  # 1.28 MB
    assert _code(path, settings) == "file_too_large"
    assert _code(path.read_bytes(), settings) == "file_too_large"


def test_three_seconds_of_speech_is_too_short() -> None:
    voice = available_voices("en")[0]
    samples, rate = synthesize(voice, "Hello there, my friend.")
    assert len(samples) / rate < 4
    assert _code(_wav(samples, rate)) == "audio_too_short"


def test_twelve_seconds_of_speech_is_too_long(voice_set: VoiceSet) -> None:
    a, rate = _speech(voice_set, 0)
    b, _ = _speech(voice_set, 1)
    long = np.concatenate([a, b])
    assert len(long) / rate > 11
    assert _code(_wav(long, rate)) == "audio_too_long"


def test_seven_seconds_of_silence_has_no_speech() -> None:
    assert _code(_wav(np.zeros(16000 * 7, np.float32), 16000)) == "no_speech"


def test_seven_seconds_of_white_noise_has_no_speech() -> None:
    noise = np.random.default_rng(1).standard_normal(16000 * 7).astype(np.float32) * 0.2
    assert _code(_wav(noise, 16000)) == "no_speech"


def test_mono_16k_wav_is_accepted_without_hints(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    clip = load_audio(_wav(resample(samples, rate, 16000), 16000))
    assert clip.format == "wav" and clip.sample_rate == 16000 and clip.hints == []
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert 5 <= clip.duration <= 8
    assert clip.speech_seconds > 3


def test_stereo_44k_wav_is_downmixed_and_resampled(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    mono44 = resample(samples, rate, 44100)
    clip = load_audio(_wav(np.stack([mono44, mono44 * 0.5], axis=1), 44100))
    assert clip.source_rate == 44100 and clip.source_channels == 2 and clip.sample_rate == 16000
    assert any(h.startswith("stereo") for h in clip.hints)


def test_24bit_and_float_wavs_are_accepted(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    for subtype in ("PCM_24", "PCM_32", "FLOAT"):
        clip = load_audio(_wav(samples, rate, subtype))
        assert clip.format == "wav" and 5 <= clip.duration <= 8, subtype


def test_mp3_is_decoded_by_content_whatever_its_name(tmp_path: Path, voice_set: VoiceSet) -> None:
    path = tmp_path / "upload.wav"  # the name lies; the content decides
    path.write_bytes(voice_set.clips[0].mp3_path.read_bytes())
    clip = load_audio(path)
    assert clip.format == "mp3"
    wav_clip = load_audio(voice_set.clips[0].wav_path)
    assert abs(clip.duration - wav_clip.duration) < 0.1


def test_8k_wav_is_accepted_with_a_low_rate_hint(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    clip = load_audio(_wav(resample(samples, rate, 8000), 8000))
    assert clip.sample_rate == 16000
    assert any(h.startswith("low_sample_rate") for h in clip.hints)


def test_quiet_and_clipped_recordings_get_hints(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    quiet = load_audio(_wav(samples * 0.01, rate))
    assert any(h.startswith("low_level") for h in quiet.hints)
    clipped = load_audio(_wav(np.clip(samples * 8, -1, 1), rate))
    assert any(h.startswith("clipping") for h in clipped.hints)
    # Loudness normalization brings both to the same level.
    rms = [float(np.sqrt(np.mean(c.samples**2))) for c in (quiet, clipped)]
    assert 0.3 < rms[0] / rms[1] < 3


def test_leading_silence_is_trimmed_and_not_counted(voice_set: VoiceSet) -> None:
    samples, rate = _speech(voice_set)
    padded = np.concatenate([np.zeros(rate * 3, np.float32), samples, np.zeros(rate * 3, np.float32)])
    clip = load_audio(_wav(padded, rate))  # 6 s of silence around it does not make it too long
    assert abs(clip.duration - load_audio(_wav(samples, rate)).duration) < 0.2


@pytest.mark.parametrize("rate", [22050, 24000])
def test_target_rate_is_selectable(voice_set: VoiceSet, rate: int) -> None:
    clip = load_audio(voice_set.clips[0].wav_path, AudioSettings(target_rate=rate))
    assert clip.sample_rate == rate
    assert abs(len(clip.samples) / rate - clip.duration) < 1e-6


def test_unsupported_target_rate_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        AudioSettings(target_rate=44100)


def test_hashes_identify_source_and_preprocessed_audio(voice_set: VoiceSet) -> None:
    wav, mp3 = load_audio(voice_set.clips[0].wav_path), load_audio(voice_set.clips[0].mp3_path)
    again = load_audio(voice_set.clips[0].wav_path.read_bytes())
    assert wav.source_sha256 != mp3.source_sha256
    assert (again.source_sha256, again.audio_sha256) == (wav.source_sha256, wav.audio_sha256)
    assert wav.report()["audioSha256"] == wav.audio_sha256


def test_loudness_is_bs1770_as_torchaudio_measures_it(voice_set: VoiceSet) -> None:
    import torch
    import torchaudio.functional as AF

    from encoders.audio import integrated_loudness, normalize_loudness

    samples, rate = _speech(voice_set, 2)
    at_16k = resample(samples, rate, 16000)
    expected = float(AF.loudness(torch.from_numpy(at_16k)[None], 16000))
    assert abs(integrated_loudness(at_16k, 16000) - expected) < 1e-3
    assert abs(integrated_loudness(normalize_loudness(at_16k, 16000, -23.0), 16000) + 23.0) < 1e-3
    assert np.isnan(integrated_loudness(np.zeros(16000, np.float32), 16000))
    assert np.array_equal(normalize_loudness(np.zeros(16000, np.float32), 16000, -23.0), np.zeros(16000))
