"""Throwaway PostgreSQL and Redis servers for fault tests: our own cluster / server on a free port in a temp
folder, so a test can stop, kill and restart them without touching the machine's shared 5432 / 6379.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bentos.devkit.processes import free_port, port_open, terminate

PG_BIN = Path(os.environ.get("VOXPERSONA_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("VOXPERSONA_REDIS_SERVER", "/usr/bin/redis-server")


class ThrowawayUnavailable(RuntimeError):
    """The server binaries are not installed here."""


def _wait_port(port: int, up: bool, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while port_open("127.0.0.1", port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not {'open' if up else 'close'} port {port} within {timeout_s} s")
        time.sleep(0.05)  # poll interval under a deadline


@dataclass
class ThrowawayPostgres:
    """`initdb` + `pg_ctl` on a free port, trust auth, in a fresh temp folder (`root` None: under the system's
    temp dir). As root, the server runs as `postgres` (PostgreSQL refuses to run as root), so the folder is
    made in the world-traversable temp dir and given to that user."""

    root: Path | None = None
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        if not (PG_BIN / "initdb").is_file():
            raise ThrowawayUnavailable(f"no initdb in {PG_BIN}")
        self._user = "postgres" if os.geteuid() == 0 else None
        if self.root is None or self._user:
            self.root = Path(tempfile.mkdtemp(prefix="vp-pg-"))
        self.data = self.root / "pgdata"
        self.log = self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ThrowawayUnavailable(f"{args[0]} failed: {(done.stderr or done.stdout).strip()[-1000:]}")

    def init(self) -> ThrowawayPostgres:
        assert self.root is not None
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> ThrowawayPostgres:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")
        _wait_port(self.port, True, 30, "postgres")
        return self

    def stop(self, mode: str = "fast") -> None:
        """mode 'immediate' is a crash (no checkpoint; recovery at the next start), 'fast' a clean stop."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait_port(self.port, False, 30, "postgres")

    def destroy(self) -> None:
        with contextlib.suppress(ThrowawayUnavailable, subprocess.SubprocessError, TimeoutError):
            self.stop("immediate")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class ThrowawayRedis:
    """`redis-server` on a free port with its append-only file in `root` (a restart keeps the queue)."""

    root: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not Path(REDIS_SERVER).is_file():
            raise ThrowawayUnavailable(f"no redis-server at {REDIS_SERVER}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        with (self.root / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return self
            except redis.RedisError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"redis-server did not answer; see {self.root / 'redis.log'}")
            time.sleep(0.05)  # poll interval under a deadline

    def stop(self) -> None:
        """SIGTERM: redis flushes its append-only file and exits."""
        proc, self._proc = self._proc, None
        terminate(proc, 15)
        _wait_port(self.port, False, 30, "redis")
