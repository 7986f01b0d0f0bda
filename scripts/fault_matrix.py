"""The fault matrix (issue 13 §4): run every fault's test, then print fault, what the user saw, whether the
invariants held, and the test; write the figures as JSON for `make reliability`.

    .venv/bin/python -m scripts.fault_matrix [--json var/reliability/faults.json] [--new-only]

It runs pytest on tests/reliability/test_fault_matrix.py (slow tests included: real process kills and restarts)
plus the tests that already pinned a row elsewhere (--new-only skips those). Each fault-matrix test records what
the user saw and the shared invariants (bentos/devkit/invariants.py) through VOXPERSONA_FAULT_REPORT; a row of
an existing test counts as held when that test passed (its own assertions are its invariants).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MATRIX = "tests/reliability/test_fault_matrix.py"
FAULTS_FILE = "tests/service/test_faults_and_settlement.py"


@dataclass(frozen=True)
class KnownRow:
    """A row an earlier test already pins: its fault, what its user sees, and the test."""

    fault: str
    result: str
    test: str


KNOWN = [
    KnownRow(
        "provider 401 invalid key (persona pipeline)",
        "persona failed: provider_misconfigured, not retryable; /health degraded",
        f"{FAULTS_FILE}::test_invalid_provider_key_fails_the_persona_clearly_and_degrades_health[sqlite]",
    ),
    KnownRow(
        "provider 429 burst on clone (persona pipeline)",
        "retried per Retry-After; persona live, one clone billed",
        f"{FAULTS_FILE}::test_a_burst_of_429s_is_retried_and_the_persona_goes_live[sqlite]",
    ),
    KnownRow(
        "provider 429s and 5xx floods (TTS breaker)",
        "429 provider_rate_limited (breaker closed); 503 provider_unavailable (breaker open), Retry-After",
        "tests/service/test_provider_capacity.py::"
        "test_provider_429s_never_trip_the_breaker_but_5xx_do_and_every_refusal_says_when[sqlite]",
    ),
    KnownRow(
        "provider 503 outage longer than every attempt (persona pipeline)",
        "persona revived after the outage and goes live",
        "tests/service/test_hostile_probe.py::"
        "test_a_provider_outage_longer_than_every_attempt_does_not_fail_the_persona_for_good[sqlite]",
    ),
    KnownRow(
        "provider timeout on clone (persona pipeline)",
        "clone retried, `duplicated` voice counted once",
        "tests/service/test_hostile_probe.py::test_a_clone_retried_after_a_client_timeout_is_counted_once[sqlite]",
    ),
    KnownRow(
        "job worker (platform process) SIGKILLed mid clone step",
        "pipeline resumed after restart: live, one clone, one registration",
        f"{FAULTS_FILE}::test_killed_platform_resumes_the_pipeline_without_a_second_clone_or_registration",
    ),
    KnownRow(
        "chain node (anvil) SIGKILLed and restarted",
        "registry, registrations and balances survive; the signer's nonce carries on",
        "tests/chain/test_durable_chain.py::test_a_killed_node_restarts_with_what_it_saved",
    ),
    KnownRow(
        "outbox dispatcher SIGKILLed mid-send (hardhat node)",
        "reconciled by tx hash: one transaction per intent",
        "tests/chain/test_faults.py::test_a_dispatcher_killed_mid_send_is_reconciled_without_sending_twice",
    ),
]


def _run_pytest(targets: list[str], junit: Path, report: Path) -> int:
    env = {**os.environ, "VOXPERSONA_FAULT_REPORT": str(report)}
    cmd = [sys.executable, "-m", "pytest", *targets, "-m", "slow or not slow", "-q", "-p", "no:cacheprovider"]
    cmd += [f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    return subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode


def _outcomes(junit: Path) -> dict[str, str]:
    """'path::name' → passed | failed | skipped | xfailed (a known defect), from pytest's JUnit XML."""
    outcomes: dict[str, str] = {}
    if not junit.exists():
        return outcomes
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        state = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            state = "failed"
        elif (skipped := case.find("skipped")) is not None:
            state = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        outcomes[f"{path}::{case.get('name')}"] = state
    return outcomes


def build_rows(
    outcomes: dict[str, str], recorded: list[dict[str, Any]], known: list[KnownRow]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for line in recorded:
        state = outcomes.get(line["test"], "failed")
        inv = line.get("invariants") or {}
        ok = state == "passed" and bool(inv.get("ok"))
        result = line["result"] or state
        if state != "passed":
            result = f"{state}: {result}" if line["result"] else state
        rows.append(
            {"fault": line["fault"], "result": result, "invariants_ok": ok, "test": line["test"],
             "outcome": state, "invariants": inv}
        )  # fmt: skip
    for row in known:
        known_state = outcomes.get(row.test)
        if known_state is None:
            continue
        rows.append(
            {"fault": row.fault,
             "result": row.result if known_state == "passed" else f"{known_state}: {row.result}",
             "invariants_ok": known_state == "passed", "test": row.test, "outcome": known_state,
             "invariants": None}
        )  # fmt: skip
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str) -> int:
        return sum(int((r["invariants"] or {}).get(key, 0)) for r in rows)

    return {
        "faults": len(rows),
        "survived": sum(1 for r in rows if r["invariants_ok"]),
        "rows": [{k: r[k] for k in ("fault", "result", "invariants_ok", "test")} for r in rows],
        "lost_usage": total("lost_usage"),
        "doubled_usage": total("doubled_usage"),
        "stuck_jobs": total("stuck_jobs"),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    headers = ("fault", "user-visible result", "invariants", "test")
    table = [
        (r["fault"], r["result"], "yes" if r["invariants_ok"] else "no", r["test"].split("::")[-1])
        for r in rows
    ]
    widths = (
        [min(70, max(len(h), *(len(t[i]) for t in table))) for i, h in enumerate(headers)] if table else []
    )
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)))
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(str(c)[:w].ljust(w) for c, w in zip(t, widths, strict=False)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=REPO / "var" / "reliability" / "faults.json")
    parser.add_argument("--new-only", action="store_true", help="only tests/reliability/test_fault_matrix.py")
    args = parser.parse_args(argv)
    known = [] if args.new_only else KNOWN
    with tempfile.TemporaryDirectory() as tmp:
        junit, report = Path(tmp) / "junit.xml", Path(tmp) / "rows.jsonl"
        _run_pytest([MATRIX, *(row.test for row in known)], junit, report)
        outcomes = _outcomes(junit)
        recorded = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    rows = build_rows(outcomes, recorded, known)
    result = summary(rows)
    print()
    print_table(rows)
    print(
        f"\n{result['survived']}/{result['faults']} faults survived; lost usage {result['lost_usage']}, "
        f"doubled usage {result['doubled_usage']}, stuck jobs {result['stuck_jobs']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0 if result["survived"] == result["faults"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
