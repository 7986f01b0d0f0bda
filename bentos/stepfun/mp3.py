"""MPEG audio frame headers: what the emulator's encoder and the platform's long-form joiner both need to walk an
MP3 stream frame by frame."""

from __future__ import annotations

_KBPS_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_KBPS_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def frame_length(header: bytes) -> int | None:
    """Bytes in the MPEG audio (layer III) frame that starts with `header` (its first 4 bytes); None if they are
    not a frame header."""
    if len(header) < 4 or header[0] != 0xFF or (header[1] & 0xE0) != 0xE0:
        return None
    version = (header[1] >> 3) & 0x03  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    bitrate_idx, rate_idx, padding = header[2] >> 4, (header[2] >> 2) & 0x03, (header[2] >> 1) & 0x01
    if version not in _RATES or rate_idx == 3 or bitrate_idx in (0, 15):
        return None
    kbps = (_KBPS_V1 if version == 3 else _KBPS_V2)[bitrate_idx]
    coef = 144 if version == 3 else 72
    return coef * kbps * 1000 // _RATES[version][rate_idx] + padding
