"""Long texts spoken as one audio: split at sentence boundaries into provider-sized parts, then join the parts'
audio streams into one continuous stream of the requested format (WAV, PCM or MP3) as they arrive.

Splitting keeps every character: `"".join(split_text(text, n)) == text`, so the characters billed for the parts
delivered are exactly those of the text they spoke.
"""

from __future__ import annotations

import io
import re
import struct

import soundfile as sf

from bentos.core.speakable import unspeakable
from bentos.stepfun import mp3

LONG_FORMATS = ("wav", "mp3", "pcm")  # formats whose streams concatenate; FLAC/Opus carry per-file state

# A sentence ends after Chinese 。！？；… (anywhere), after English . ! ? ; followed by a space, a closing quote or
# the end (so "3.14", "e.g.x" and "..." inside a word never end one), or at a newline; closing quotes and the
# whitespace after it belong to the sentence.
_CLOSERS = "”’\"'」』）)]"
_SENTENCE_END = re.compile(
    rf"(?:[。！？；…]+|[.!?;]+(?=[\s{re.escape(_CLOSERS)}]|$)|\n)[{re.escape(_CLOSERS)}]*\s*"
)
_CLAUSE_END = re.compile(r"[，、,：:]\s*")
_SPACE = re.compile(r"\s+")


def sentences(text: str) -> list[str]:
    """The text's sentences, each with its closing punctuation and the whitespace after it (they cover it)."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            out.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _cut(piece: str, limit: int) -> int:
    """Where to cut a piece longer than `limit`: after a comma in the second half, else after a space, else after
    any comma, else at the limit (text without spaces, as Chinese is, has no words to keep whole)."""
    commas = [m.end() for m in _CLAUSE_END.finditer(piece, 0, limit) if m.end() <= limit]
    spaces = [m.end() for m in _SPACE.finditer(piece, 0, limit) if 0 < m.end() <= limit]
    late_commas = [c for c in commas if c > limit // 2]
    for choice in (late_commas, spaces, commas):
        if choice:
            return choice[-1]
    return limit


def _clauses(sentence: str, limit: int) -> list[str]:
    out: list[str] = []
    while len(sentence) > limit:
        cut = _cut(sentence, limit)
        out.append(sentence[:cut])
        sentence = sentence[cut:]
    if sentence:
        out.append(sentence)
    return out


def split_text(text: str, max_chars: int, first_max_chars: int | None = None) -> list[str]:
    """Parts of at most `max_chars` characters, cut at sentence boundaries (a longer sentence at commas or
    spaces), each with something to speak; consecutive sentences share a part, so a text takes as few provider
    calls as it can. The parts concatenate to `text`.

    `first_max_chars` bounds the first part alone: a provider that answers a call only once it has synthesised all
    of it makes the first byte wait for the whole first part, so a short one starts a long text as fast as a short
    text, and the longer parts after it are synthesised while it plays."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    if first_max_chars is not None and first_max_chars < max_chars and len(text) > first_max_chars:
        first = split_text(text, first_max_chars)[0]
        return [first, *split_text(text[len(first) :], max_chars)] if len(first) < len(text) else [first]
    pieces = [clause for sentence in sentences(text) for clause in _clauses(sentence, max_chars)]
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1]) + len(piece) <= max_chars:
            parts[-1] += piece
        else:
            parts.append(piece)
    # A part with nothing to speak ("……" after a full part, a lone quote) rides with a neighbour when one has
    # room: alone the provider would refuse it.
    i = 0
    while i < len(parts) and len(parts) > 1:
        if unspeakable(parts[i]):
            if i > 0 and len(parts[i - 1]) + len(parts[i]) <= max_chars:
                parts[i - 1 : i + 1] = [parts[i - 1] + parts[i]]
                continue
            if i + 1 < len(parts) and len(parts[i]) + len(parts[i + 1]) <= max_chars:
                parts[i : i + 2] = [parts[i] + parts[i + 1]]
                continue
        i += 1
    return parts


# -- joining the parts' audio ------------------------------------------------------------------------------------

_UNKNOWN = 0xFFFFFFFF


def wav_stream_header(channels: int, rate: int, bits: int) -> bytes:
    """A PCM WAV header whose RIFF and data sizes say "unknown" (streaming): readers take the data to the end."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + (struct.pack("<I", _UNKNOWN))
    )


class JoinError(ValueError):
    """A part's audio can't be joined to the others (not the format asked for, or a different sample format)."""


class AudioJoiner:
    """Joins the audio of consecutive parts into one stream: `feed` each part's bytes as they arrive, then
    `end_part` after each part. WAV: one streaming header, then every part's PCM data; PCM: the bytes as they
    are; MP3: the frames, without any part's Xing/Info frame (it gives one part's length, and decoders would stop
    there) and without the ID3 tags of parts after the first."""

    def __init__(self, fmt: str, pcm_rate: int) -> None:
        if fmt not in LONG_FORMATS:
            raise ValueError(f"long texts are spoken as one of {LONG_FORMATS}, not {fmt}")
        self.fmt = fmt
        self.pcm_rate = pcm_rate
        self.parts = 0  # parts ended
        self._wav_format: tuple[int, int, int] | None = None  # (channels, rate, bits) of the first part
        self._new_part()

    def _new_part(self) -> None:
        self._head = bytearray()  # bytes before the part's audio starts, until its header is understood
        self._in_audio = self.fmt == "pcm"
        self._remaining: int | None = None  # WAV data bytes left, when the header says how many
        self._tail = bytearray()  # MP3: the last 128 bytes, which may be an ID3v1 tag
        self._audio_bytes = 0
        self._mp3 = bytearray()  # MP3: the part's frames, to measure its duration

    def feed(self, chunk: bytes) -> bytes:
        if not self._in_audio:
            self._head += chunk
            return self._take_head()  # the header understood, what follows it as audio; else nothing yet
        return self._audio(chunk)

    def end_part(self) -> tuple[bytes, int]:
        """The part's last bytes and its duration in ms."""
        if not self._in_audio and self.fmt != "pcm":
            raise JoinError(f"a part ended before its {self.fmt} audio began")
        out = b""
        if self.fmt == "mp3":
            tail = bytes(self._tail)
            out = b"" if tail.startswith(b"TAG") and len(tail) == 128 else tail
            self._mp3 += out
        ms = self._part_ms()
        self.parts += 1
        self._new_part()
        return out, ms

    def _part_ms(self) -> int:
        if self.fmt == "mp3":
            try:
                info = sf.info(io.BytesIO(bytes(self._mp3)))
                return int(info.frames * 1000 // info.samplerate)
            except Exception:
                return 0
        channels, rate, bits = self._wav_format or (1, self.pcm_rate, 16)
        return self._audio_bytes // (channels * bits // 8) * 1000 // rate

    def _audio(self, chunk: bytes) -> bytes:
        if self._remaining is not None:
            chunk = chunk[: self._remaining]  # what follows the data chunk (a LIST chunk) is not audio
            self._remaining -= len(chunk)
        if self.fmt == "mp3":
            self._tail += chunk
            chunk, self._tail = bytes(self._tail[:-128]), self._tail[-128:]
            self._mp3 += chunk
        self._audio_bytes += len(chunk)
        return chunk

    def _take_head(self) -> bytes:
        return self._wav_head() if self.fmt == "wav" else self._mp3_head()

    def _wav_head(self) -> bytes:
        head = bytes(self._head)
        if len(head) < 12:
            return b""
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise JoinError("a part is not a WAV stream")
        pos = 12
        fmt: tuple[int, int, int] | None = None
        while len(head) >= pos + 8:
            kind, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
            if kind == b"data":
                if fmt is None:
                    raise JoinError("a WAV part has no fmt chunk before its data")
                out = b""
                if self._wav_format is None:
                    self._wav_format = fmt
                    out = wav_stream_header(*fmt)
                elif fmt != self._wav_format:
                    raise JoinError(f"a WAV part is {fmt}, the first was {self._wav_format}")
                self._in_audio = True
                self._remaining = None if size in (0, _UNKNOWN) else size
                return out + self._audio(head[pos + 8 :])
            if len(head) < pos + 8 + size:
                return b""
            if kind == b"fmt ":
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", head[pos + 8 : pos + 24])
                if tag not in (1, 0xFFFE) or bits != 16:
                    raise JoinError("a WAV part is not 16-bit PCM")
                fmt = (channels, rate, bits)
            pos += 8 + size + (size & 1)
        return b""

    def _mp3_head(self) -> bytes:
        head = bytes(self._head)
        pos = 0
        if head[:3] == b"ID3":
            if len(head) < 10:
                return b""
            size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
            pos = 10 + size + (10 if head[5] & 0x10 else 0)
            if len(head) < pos:
                return b""
        keep = head[:pos] if self.parts == 0 else b""
        if len(head) < pos + 4:
            return b""
        length = mp3.frame_length(head[pos : pos + 4])
        if length is None:
            raise JoinError("a part is not an MP3 stream")
        if len(head) < pos + length:
            return b""
        frame = head[pos : pos + length]
        if b"Xing" in frame or b"Info" in frame:
            pos += length
        self._in_audio = True
        return keep + self._audio(head[pos:])
