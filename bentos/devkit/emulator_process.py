"""Run the emulator as a real subprocess (tests, the platform's runner): start, wait until ready, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.devkit.processes import free_port, terminate
from bentos.stepfun.settings import EMULATOR_DEV_KEY, EmulatorSettings


class EmulatorProcess:
    """`with EmulatorProcess(tmp_path) as emu: emu.base_url`: a loopback emulator while the block runs.

    opts: rpm, concurrency, latency_ms, error_rate (EmulatorSettings), cache_dir, max_candidates.
    cache_dir: the voice engine's base-voice statistics; None (the default) reads the machine-wide cache that
    `make setup` fills, so a fresh state_dir's first clone costs seconds, not minutes.
    The emulator's stdout and stderr (warnings, tracebacks of its 500s) are appended to log_path, by default
    `<state_dir>/emulator.log`.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int | None = None,
        api_keys: tuple[str, ...] = (EMULATOR_DEV_KEY,),
        *,
        host: str = "127.0.0.1",
        cache_dir: Path | None = None,
        max_candidates: int = 0,
        start_timeout_s: float = 30.0,
        log_path: Path | None = None,
        **opts: Any,
    ) -> None:
        self.settings = EmulatorSettings(
            host=host, port=port or free_port(), state_dir=Path(state_dir), api_keys=tuple(api_keys),
            cache_dir=cache_dir, **opts,
        )  # fmt: skip
        self.max_candidates = max_candidates
        self.start_timeout_s = start_timeout_s
        self.log_path = Path(log_path) if log_path is not None else self.settings.state_dir / "emulator.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: EmulatorSettings, **kwargs: Any) -> EmulatorProcess:
        opts = settings.model_dump(include={"rpm", "concurrency", "latency_ms", "error_rate", "cache_dir"})
        opts.update(kwargs)
        return cls(settings.state_dir, settings.port, settings.api_keys, host=settings.host, **opts)

    @property
    def cache_dir(self) -> Path | None:
        return self.settings.cache_dir

    @property
    def root_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def base_url(self) -> str:
        """What a client's base_url should be (StepFun's paths live under /v1)."""
        return f"{self.root_url}/v1"

    def start(self) -> EmulatorProcess:
        args = [sys.executable, "-m", "bentos.stepfun.emulator", *self.settings.cli_args()]
        if self.max_candidates:
            args += ["--max-candidates", str(self.max_candidates)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A file, never a pipe: nobody reads a pipe while the emulator runs, and once its ~64 KB buffer is full
        # of tracebacks the emulator blocks in write() and every call hangs.
        with self.log_path.open("ab") as log:
            log_start = log.tell()
            self._proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"emulator exited with {self._proc.returncode} (log: {self.log_path}): "
                    f"{self._log_tail(log_start)}"
                )
            try:
                if httpx.get(f"{self.root_url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval with a deadline, not a wait-for-luck sleep
        self.stop()
        raise TimeoutError(
            f"emulator not ready within {self.start_timeout_s}s (log: {self.log_path}): {self._log_tail(log_start)}"
        )

    def _log_tail(self, start: int, max_chars: int = 2000) -> str:
        """What this run wrote to the log (earlier runs' lines would mislead), its last max_chars."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(start)
                text = log.read().decode(errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return text[-max_chars:]

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        terminate(proc, timeout_s)

    def admin(self, route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST (body given) or GET a /_admin route, e.g. admin('faults', {'fail_next': 2, 'status': 503})."""
        url = f"{self.root_url}/_admin/{route}"
        r = httpx.post(url, json=body, timeout=5) if body is not None else httpx.get(url, timeout=5)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
