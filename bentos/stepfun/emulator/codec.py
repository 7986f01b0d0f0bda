"""Encode synthesised speech into the contract's formats, whole or chunk by chunk for streaming.

soundfile 0.14 (bundled libsndfile 1.2) writes WAV, MP3, FLAC and OGG/Opus. Opus takes only 8/12/16/24/48 kHz,
so a 22050 Hz opus request is encoded at 24000 Hz [?]. Streamed WAV has the "unknown length" header.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from bentos.stepfun import mp3

_SF_FORMAT = {"wav": ("WAV", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16")}
_SF_FORMAT["opus"] = ("OGG", "OPUS")
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# ≈128 kbps CBR at 24 kHz (the observed StepFun MP3), via libsndfile's 0..1 compression scale.
_MP3_OPTIONS = {"bitrate_mode": "CONSTANT", "compression_level": 0.3}


def encoded_rate(fmt: str, rate: int) -> int:
    """The sample rate actually written for a requested (format, rate)."""
    if fmt == "opus" and rate not in _OPUS_RATES:
        return min(r for r in _OPUS_RATES if r >= rate)
    return rate


def pcm16(samples: np.ndarray) -> bytes:
    """float32 [n] in [-1, 1] → signed 16-bit little-endian mono bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """Whole file. samples: float32 mono [n] at `rate` Hz (already resampled to encoded_rate)."""
    if fmt == "pcm":
        return pcm16(samples)
    container, subtype = _SF_FORMAT[fmt]
    buf = io.BytesIO()
    options = _MP3_OPTIONS if fmt == "mp3" else {}
    sf.write(buf, np.clip(samples, -1.0, 1.0), rate, format=container, subtype=subtype, **options)
    return buf.getvalue()


def strip_mp3_info_frame(data: bytes) -> bytes:
    """Drop the leading Xing/Info frame: it states one segment's length, which would make decoders stop after
    the first of several concatenated streamed segments."""
    length = mp3.frame_length(data[:4])
    if length and (b"Xing" in data[:length] or b"Info" in data[:length]):
        return data[length:]
    return data


def wav_stream_header(rate: int) -> bytes:
    unknown = 0xFFFFFFFF
    fmt_chunk = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + fmt_chunk + b"data" + struct.pack("<I", unknown)
    )


class _Sink(io.RawIOBase):
    """A seekable in-memory file that remembers how far bytes have been handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = bytearray()
        self.pos = 0
        self.sent = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        data = bytes(b)
        self.buf[self.pos : self.pos + len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else len(self.buf) + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.buf[self.pos : self.pos + len(b)]
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buf[self.sent :])
        self.sent = len(self.buf)
        return out


def stream_encode(chunks: Iterator[np.ndarray], rate: int, fmt: str) -> Iterator[bytes]:
    """Encode float32 mono chunks as they are produced; yields bytes as soon as the encoder emits them.

    OGG/Opus emits pages as they fill. FLAC is sent whole at the end: its STREAMINFO (total length) is only
    known at close, and libsndfile-based readers choke on a FLAC that says "length unknown".
    """
    if fmt == "pcm":
        for chunk in chunks:
            yield pcm16(chunk)
        return
    if fmt == "wav":
        yield wav_stream_header(rate)
        for chunk in chunks:
            yield pcm16(chunk)
        return
    if fmt == "mp3":
        for chunk in chunks:
            yield strip_mp3_info_frame(encode(chunk, rate, "mp3"))
        return
    if fmt == "flac":
        yield encode(np.concatenate(list(chunks) or [np.zeros(0, np.float32)]), rate, "flac")
        return
    container, subtype = _SF_FORMAT[fmt]
    sink = _Sink()
    with sf.SoundFile(sink, "w", rate, 1, format=container, subtype=subtype) as writer:
        for chunk in chunks:
            writer.write(np.clip(chunk, -1.0, 1.0))
            out = sink.take()
            if out:
                yield out
    tail = sink.take()
    if tail:
        yield tail
