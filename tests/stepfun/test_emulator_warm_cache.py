"""The voice engine's base-voice cache: `--warm-cache` fills it, a fresh emulator's first clone reads it without
measuring anything, a corrupt or stale file is detected and recomputed, and concurrent writers share the work.

Outcomes are asserted (the engine's counters in /_admin/stats, the file's bytes and mtime), never timings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import StepFunClient
from bentos.stepfun.emulator import stats_cache
from bentos.stepfun.emulator.engine import VoiceEngine
from bentos.stepfun.emulator.stats_cache import CACHE_ENV, default_cache_dir
from tests.stepfun.stepfun_helpers import REFERENCE_TEXT, fast_settings

CANDIDATES = 2  # base voices per language: 4 measured, enough to clone, cheap to warm
CACHE_NAME = "base-voices-v1.json"


def warm_cli(cache_dir: Path, candidates: int = CANDIDATES) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bentos.stepfun.emulator", "--warm-cache", "--cache-dir", str(cache_dir)]
    return subprocess.Popen(
        [*cmd, "--max-candidates", str(candidates)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def measured(proc: subprocess.Popen[str]) -> int:
    """Run a --warm-cache process to its end → how many base voices it measured (its last line says)."""
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    found = re.search(r"(\d+) measured now", out)
    assert found, out
    return int(found.group(1))


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder filled by the CLI `make setup` runs (4 base voices)."""
    cache = tmp_path_factory.mktemp("warmed-cache")
    assert measured(warm_cli(cache)) == 2 * CANDIDATES
    assert measured(warm_cli(cache)) == 0  # a second run finds everything: what a rerun of make setup costs
    return cache


@pytest.fixture()
def cache(warmed: Path, tmp_path: Path) -> Path:
    """A private copy of the warmed cache, for tests that break it."""
    return Path(shutil.copytree(warmed, tmp_path / "cache"))


def test_fresh_emulator_first_clone_reads_the_warmed_cache(
    cache: Path, tmp_path: Path, reference: bytes
) -> None:
    path = cache / CACHE_NAME
    before = path.read_bytes(), path.stat().st_mtime_ns
    state = tmp_path / "state"  # a new, empty state folder: nothing of an earlier run to lean on
    with EmulatorProcess(state, rpm=0, concurrency=0, cache_dir=cache, max_candidates=CANDIDATES) as emu:
        assert emu.admin("stats")["engine"] is None  # nothing needed the engine yet
        with StepFunClient(fast_settings(emu.base_url)) as client:
            file = client.upload_file(reference, "reference.wav")
            voice = client.create_voice(file.id, text=REFERENCE_TEXT)
        assert voice.id and not voice.duplicated
        engine = emu.admin("stats")["engine"]
    assert engine["state"] == "loaded" and engine["loaded"] == 2 * CANDIDATES, engine
    assert engine["computed"] == 0 and engine["writes"] == 0, engine
    assert engine["reads"] >= 1 and engine["path"] == str(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # read, never rewritten
    assert not (state / "cache").exists()  # the state folder holds no statistics of its own any more


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None], fix_checksum: bool) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    if fix_checksum:
        doc["checksum"] = stats_cache._checksum(doc["entries"])
    path.write_text(json.dumps(doc))


def _first_entry(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = next(iter(doc["entries"].values()))
    return entry


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "not json": lambda p: p.write_bytes(b"\x00garbage"),
    "old format (a bare entries object)": lambda p: p.write_text(
        json.dumps(json.loads(p.read_text())["entries"])
    ),
    "a value flipped": lambda p: _rewrite(p, lambda d: _first_entry(d).update(f0_median=1.0), False),
    "an embedding cut short (checksum fixed)": lambda p: _rewrite(
        p, lambda d: _first_entry(d).update(embedding=_first_entry(d)["embedding"][:10]), True
    ),
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_corrupt_cache_is_detected_and_recomputed(cache: Path, corrupt: str) -> None:
    CORRUPTIONS[corrupt](cache / CACHE_NAME)
    engine = VoiceEngine(cache, max_candidates=CANDIDATES)
    assert engine.cache_state == "corrupt" and engine.loaded == 0
    assert engine.warm()["computed"] == 2 * CANDIDATES
    again = VoiceEngine(cache, max_candidates=CANDIDATES)  # the rewritten file is whole again
    assert again.cache_state == "loaded" and again.loaded == 2 * CANDIDATES
    assert again.warm()["computed"] == 0


def test_stale_cache_is_detected_and_recomputed(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgraded synthesiser changes the key: the file of the old key is stale and gets replaced."""
    real = stats_cache._tool_version
    monkeypatch.setattr(
        stats_cache, "_tool_version", lambda tool: "eSpeak NG 9.99" if tool == "espeak-ng" else real(tool)
    )
    engine = VoiceEngine(cache, max_candidates=CANDIDATES)
    assert engine.cache_state == "stale" and engine.loaded == 0
    assert engine.warm()["computed"] == 2 * CANDIDATES
    doc = json.loads((cache / CACHE_NAME).read_text())
    assert doc["key"]["synthesisers"]["espeak-ng"] == "eSpeak NG 9.99"
    assert VoiceEngine(cache, max_candidates=CANDIDATES).cache_state == "loaded"


def test_removed_voice_makes_the_cache_stale(cache: Path) -> None:
    """The installed voices are part of the key (a file listing other voices was made on another machine)."""
    _rewrite(cache / CACHE_NAME, lambda d: d["key"]["voices"].pop(), True)
    assert VoiceEngine(cache, max_candidates=CANDIDATES).cache_state == "stale"


def test_two_cold_warmers_share_the_work(tmp_path: Path) -> None:
    """Two processes filling one empty cache at once: the lock lets each voice be measured once, and the file
    they leave is whole."""
    cache = tmp_path / "cache"
    procs = [warm_cli(cache), warm_cli(cache)]
    assert sum(measured(p) for p in procs) == 2 * CANDIDATES
    engine = VoiceEngine(cache, max_candidates=CANDIDATES)
    assert engine.cache_state == "loaded" and engine.loaded == 2 * CANDIDATES
    assert not [p.name for p in cache.iterdir() if p.name.startswith(f".{CACHE_NAME}.")]  # no temp files left


def test_cache_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (CACHE_ENV, "VOXPERSONA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "voxpersona" / "voice-engine"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "voxpersona" / "voice-engine"
    monkeypatch.setenv("VOXPERSONA_CACHE_DIR", str(tmp_path / "vp"))
    assert default_cache_dir() == tmp_path / "vp" / "voice-engine"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    assert VoiceEngine(None, max_candidates=1).cache.path == tmp_path / "explicit" / CACHE_NAME
