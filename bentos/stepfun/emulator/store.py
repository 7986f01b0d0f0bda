"""The emulator's durable state: uploaded files, cloned voices and their engine profiles, in one folder.

`state.json` is rewritten atomically (temp file + fsync + rename) on every change and file bodies live beside
it, so a killed or restarted emulator loses nothing it had acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bentos.store.local_files import atomic_write

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, n: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def owner_of(api_key: str) -> str:
    """Keys are never stored: records are owned by a digest of the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:24]


@dataclass
class FileRecord:
    id: str
    owner: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed",
        }  # fmt: skip


@dataclass
class VoiceRecord:
    id: str
    owner: str
    file_id: str
    model: str
    content_sha256: str
    created_at: int
    sample_text: str | None = None
    seq: int = 0  # creation order (created_at has 1 s resolution)
    profile: dict[str, Any] = field(default_factory=dict)  # engine adaptation (see engine.VoiceProfile)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "file_id": self.file_id, "created_at": self.created_at}


class EmulatorStore:
    """Thread-safe; every mutation is persisted before it returns."""

    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir)
        self.files_dir = self.root / "files"
        self.samples_dir = self.root / "samples"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / "state.json"
        self._lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.voices: dict[str, VoiceRecord] = {}
        self._load()

    def _load(self) -> None:
        if not self._state_path.exists():
            return
        state = json.loads(self._state_path.read_text(encoding="utf-8"))
        self.files = {k: FileRecord(**v) for k, v in state.get("files", {}).items()}
        self.voices = {k: VoiceRecord(**v) for k, v in state.get("voices", {}).items()}

    def _save(self) -> None:
        state = {
            "version": 1,
            "files": {k: asdict(v) for k, v in self.files.items()},
            "voices": {k: asdict(v) for k, v in self.voices.items()},
        }
        atomic_write(self._state_path, json.dumps(state, ensure_ascii=False, indent=1).encode("utf-8"))

    # -- files
    def add_file(self, owner: str, filename: str, purpose: str, content: bytes) -> FileRecord:
        with self._lock:
            record = FileRecord(
                id=new_id("file-"), owner=owner, filename=filename, purpose=purpose, bytes=len(content),
                sha256=hashlib.sha256(content).hexdigest(), created_at=int(time.time()),
            )  # fmt: skip
            atomic_write(self.files_dir / record.id, content)
            self.files[record.id] = record
            self._save()
            return record

    def file(self, owner: str, file_id: str) -> FileRecord | None:
        record = self.files.get(file_id)
        return record if record is not None and record.owner == owner else None

    def file_content(self, record: FileRecord) -> bytes:
        return (self.files_dir / record.id).read_bytes()

    def list_files(self, owner: str, purpose: str | None = None) -> list[FileRecord]:
        with self._lock:
            rows = [
                f
                for f in self.files.values()
                if f.owner == owner and (purpose is None or f.purpose == purpose)
            ]
        return sorted(rows, key=lambda f: (f.created_at, f.id))

    def count_files(self, owner: str) -> int:
        return sum(1 for f in self.files.values() if f.owner == owner)

    def delete_file(self, record: FileRecord) -> None:
        # Voices cloned from a file survive its deletion (as on StepFun, where that is the only "delete").
        with self._lock:
            self.files.pop(record.id, None)
            self._save()
            (self.files_dir / record.id).unlink(missing_ok=True)

    # -- voices
    def find_clone(self, owner: str, model: str, content_sha256: str) -> VoiceRecord | None:
        with self._lock:
            for voice in self.voices.values():
                if (voice.owner, voice.model, voice.content_sha256) == (owner, model, content_sha256):
                    return voice
        return None

    def add_voice(self, record: VoiceRecord, sample_wav: bytes | None) -> VoiceRecord:
        with self._lock:
            record.seq = max((v.seq for v in self.voices.values()), default=0) + 1
            if sample_wav is not None:
                atomic_write(self.samples_dir / f"{record.id}.wav", sample_wav)
            self.voices[record.id] = record
            self._save()
            return record

    def voice(self, owner: str, voice_id: str) -> VoiceRecord | None:
        record = self.voices.get(voice_id)
        return record if record is not None and record.owner == owner else None

    def sample_wav(self, voice_id: str) -> bytes | None:
        path = self.samples_dir / f"{voice_id}.wav"
        return path.read_bytes() if path.exists() else None

    def list_voices(self, owner: str) -> list[VoiceRecord]:
        with self._lock:
            rows = [v for v in self.voices.values() if v.owner == owner]
        return sorted(rows, key=lambda v: v.seq)
