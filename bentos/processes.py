"""Stopping the subprocesses we start (emulator, bentoml serve, streamlit) the same polite way."""

from __future__ import annotations

import signal
import subprocess


def terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL if it will not go. bentoml's supervisor must get the SIGTERM itself: its
    workers run in sessions of their own and exit with it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
