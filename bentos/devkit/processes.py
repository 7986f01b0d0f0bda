"""The subprocesses we start (emulator, `bentoml serve`, streamlit, dev nodes): free ports, readiness, stopping."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def bentoml_serve(target: str, host: str, port: int) -> list[str]:
    """The command line of `bentoml serve target` in this interpreter."""
    return [sys.executable, "-m", "bentoml", "serve", target, "--host", host, "--port", str(port)]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float, what: str = "the service") -> None:
    """Poll GET `url` until it answers 200; RuntimeError if `proc` exits first, TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s")
        time.sleep(0.2)  # poll interval under a deadline


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


def wait_port_closed(host: str, port: int, timeout_s: float = 30.0) -> bool:
    """After stopping a server: True once nothing listens on the port (a worker can outlive its supervisor)."""
    deadline = time.monotonic() + timeout_s
    while port_open(host, port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
