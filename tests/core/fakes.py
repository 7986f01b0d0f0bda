"""An in-memory StepFun stand-in for fast unit tests of the core: StepFun's semantics (one voice per
(audio, model), `duplicated` on a repeat, files listed by name), counters, and injectable failures."""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from bentos.stepfun.errors import StepFunError
from bentos.stepfun.models import ClonedVoice, SpeechAudio, StepFile
from bentos.stepfun.settings import ProviderSettings


def _wav(seconds: float = 1.0, rate: int = 24000) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    return buf.getvalue()


@dataclass
class FakeProvider:
    settings: ProviderSettings = field(default_factory=lambda: ProviderSettings(breaker_reset_timeout_s=7.0))
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id → (filename, content)
    voices: dict[tuple[str, str], str] = field(default_factory=dict)  # (content sha256, model) → voice id
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("upload", "clone", "speech"), 0))
    fail_clone: list[StepFunError] = field(default_factory=list)  # raised by the next clone calls, in order
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def upload_file(
        self, content: bytes, filename: str = "reference.wav", purpose: str = "storage"
    ) -> StepFile:
        with self._lock:
            self.calls["upload"] += 1
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = (filename, content)
        return StepFile(file_id, len(content), 0, filename, purpose)

    def list_files(self, purpose: str | None = None) -> list[StepFile]:
        return [StepFile(i, len(c), 0, name, "storage") for i, (name, c) in self.files.items()]

    def create_voice(
        self,
        file_id: str,
        *,
        model: str | None = None,
        text: str | None = None,
        sample_text: str | None = None,
    ) -> ClonedVoice:
        with self._lock:
            self.calls["clone"] += 1
            if self.fail_clone:
                raise self.fail_clone.pop(0)
            key = (hashlib.sha256(self.files[file_id][1]).hexdigest(), model or "step-tts-2")
            duplicated = key in self.voices
            if not duplicated:
                self.voices[key] = f"voice-{next(self._ids)}"
        return ClonedVoice(self.voices[key], duplicated, sample_text or "Hello.", _wav())

    def speech(self, **fields: object) -> SpeechAudio:
        self.calls["speech"] += 1
        return SpeechAudio(_wav(), "audio/wav", "wav")

    @property
    def created_voices(self) -> int:
        return len(self.voices)
