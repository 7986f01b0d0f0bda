"""Run the emulator as a real subprocess (tests, the platform's runner): start, wait until ready, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.processes import free_port, terminate

from ..settings import EMULATOR_DEV_KEY, EmulatorSettings


class EmulatorProcess:
    """`with EmulatorProcess(tmp_path) as emu: emu.base_url`: a loopback emulator while the block runs.

    opts: rpm, concurrency, latency_ms, error_rate (EmulatorSettings), cache_dir, max_candidates.
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
        **opts: Any,
    ) -> None:
        self.settings = EmulatorSettings(
            host=host, port=port or free_port(), state_dir=Path(state_dir), api_keys=tuple(api_keys), **opts
        )
        self.cache_dir = cache_dir
        self.max_candidates = max_candidates
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: EmulatorSettings, **kwargs: Any) -> EmulatorProcess:
        opts = settings.model_dump(include={"rpm", "concurrency", "latency_ms", "error_rate"})
        return cls(settings.state_dir, settings.port, settings.api_keys, host=settings.host, **opts, **kwargs)

    @property
    def root_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def base_url(self) -> str:
        """What a client's base_url should be (StepFun's paths live under /v1)."""
        return f"{self.root_url}/v1"

    def start(self) -> EmulatorProcess:
        args = [sys.executable, "-m", "bentos.stepfun.emulator", *self.settings.cli_args()]
        if self.cache_dir is not None:
            args += ["--cache-dir", str(self.cache_dir)]
        if self.max_candidates:
            args += ["--max-candidates", str(self.max_candidates)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"emulator exited with {self._proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(f"{self.root_url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval with a deadline, not a wait-for-luck sleep
        self.stop()
        raise TimeoutError(f"emulator not ready within {self.start_timeout_s}s")

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
