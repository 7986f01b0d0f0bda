"""The load script, briefly, against the platform as `make run ARGS="db=postgres queue=redis"` starts it: a mixed
workload from concurrent clients never gets a server error, and the platform bills exactly the speech calls the
clients got (retries under one Idempotency-Key included). Latency is reported by the script, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_mixed_load_on_postgres_and_redis_has_no_5xx_and_bills_each_call_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    command = [
        sys.executable, "-m", "scripts.load_test", "--clients", "4", "--duration", "15",
        "--args", "db=postgres queue=redis", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())

    assert result["requests"] > 0 and result["usage_expected"] > 0, result
    assert result["server_5xx"] == 0, result["notes"]
    assert result["lost_usage"] == 0 and result["doubled_usage"] == 0, result
    assert result["usage_billed"] == result["usage_expected"]
    assert result["replay_mismatches"] == 0, result["notes"]
