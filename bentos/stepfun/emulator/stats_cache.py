"""The voice engine's machine-wide cache of base-voice statistics (one JSON file, shared by every emulator).

Measuring the installed Debian voices (synthesis, WORLD analysis, a GE2E embedding each) takes ~0.5 s per
voice, tens of seconds for all of them: `make setup` does it once (`python -m bentos.stepfun.emulator
--warm-cache`) and every emulator after that reads the file. Where it lives: the emulator's `cache_dir`
setting (`--cache-dir`), else `$VOXPERSONA_VOICE_CACHE`, else `$VOXPERSONA_CACHE_DIR/voice-engine`, else
`${XDG_CACHE_HOME:-~/.cache}/voxpersona/voice-engine`.

The file records the key it was computed under (engine version and analysis parameters, the installed voices,
the synthesisers' and the analysis libraries' versions, the festival voice data) and a checksum of its
entries: a file from another key is stale, one that does not parse or whose checksum fails is corrupt; both
are recomputed and overwritten. Writers hold an exclusive lock (flock on a side file) and replace the file
atomically, so readers never need the lock and two emulators never compute the same voices twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from bentos.store.local_files import atomic_write

log = logging.getLogger(__name__)

CACHE_ENV = "VOXPERSONA_VOICE_CACHE"
CACHE_FORMAT = 1
_SYNTHESISERS = ("espeak-ng", "flite", "festival")
_FESTIVAL_VOICES = Path("/usr/share/festival/voices")
_LIBRARIES = ("resemblyzer", "torch", "pyworld", "soxr", "numpy")

CacheState = Literal["missing", "loaded", "stale", "corrupt", "unreadable"]


def default_cache_dir() -> Path:
    """`$VOXPERSONA_VOICE_CACHE`, else `$VOXPERSONA_CACHE_DIR/voice-engine`, else the XDG cache folder."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("VOXPERSONA_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "voice-engine"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "voxpersona" / "voice-engine"


def _tool_version(tool: str) -> str | None:
    if shutil.which(tool) is None:
        return None
    try:  # flite prints its version and exits 1: the text is what counts, not the status
        proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return " ".join((proc.stdout + proc.stderr).split())[:300]


def _library_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _tree_digest(root: Path) -> str | None:
    """sha256 over (relative path, size, mtime) of every file under root: voice data changes with packages."""
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def environment_key() -> dict[str, Any]:
    """What besides the engine invalidates measured base voices: synthesisers, voice data, libraries."""
    return {
        "synthesisers": {tool: _tool_version(tool) for tool in _SYNTHESISERS},
        "festival_voices": _tree_digest(_FESTIVAL_VOICES),
        "libraries": {name: _library_version(name) for name in _LIBRARIES},
    }


def _checksum(entries: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


class StatsCache:
    """One cache file: `<directory>/<name>.json`, its writers' lock `<name>.json.lock` beside it."""

    def __init__(self, directory: Path, name: str, key: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{name}.json"
        self.lock_path = self.directory / f"{name}.json.lock"
        # Normalised through JSON so the comparison with a loaded key is exact (tuples → lists, floats).
        self.key: dict[str, Any] = json.loads(json.dumps(key, sort_keys=True))
        self.reads = 0
        self.writes = 0

    def load(self) -> tuple[CacheState, dict[str, Any]]:
        """(state, entries): entries are only returned for a file of this key with a valid checksum."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return "missing", {}
        except OSError as exc:
            log.warning("voice engine cache %s is unreadable (%s): recomputing", self.path, exc)
            return "unreadable", {}
        self.reads += 1
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            key, entries, checksum = doc["key"], doc["entries"], doc["checksum"]
            fmt = doc["format"]
        except (ValueError, KeyError, TypeError) as exc:  # torn, truncated, hand-edited, foreign
            log.warning("voice engine cache %s is corrupt (%s): recomputing", self.path, exc)
            return "corrupt", {}
        if fmt != CACHE_FORMAT or key != self.key:
            changed = sorted(k for k in {*self.key, *key} if self.key.get(k) != key.get(k))
            log.warning("voice engine cache %s is stale (changed: %s): recomputing", self.path, changed)
            return "stale", {}
        if not isinstance(entries, dict) or checksum != _checksum(entries):
            log.warning("voice engine cache %s is corrupt (checksum mismatch): recomputing", self.path)
            return "corrupt", {}
        return "loaded", entries

    @contextmanager
    def locked(self) -> Iterator[bool]:
        """Hold the writers' lock (blocking); yields False when the folder cannot be written (then the
        caller computes in memory only)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            log.warning(
                "voice engine cache %s is not writable (%s): statistics stay in memory", self.path, exc
            )
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # a file system without flock: atomic replaces still keep the file whole
                log.warning("voice engine cache %s cannot be locked (%s): writing unlocked", self.path, exc)
            yield True
        finally:
            os.close(fd)  # releases the lock

    def save(self, entries: dict[str, Any]) -> None:
        """Replace the file atomically (call while holding `locked()`)."""
        doc = {"format": CACHE_FORMAT, "key": self.key, "checksum": _checksum(entries), "entries": entries}
        atomic_write(self.path, json.dumps(doc, sort_keys=True).encode())
        self.writes += 1
