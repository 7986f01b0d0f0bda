"""`make reliability`: run the reliability checks in order and write one Markdown report of their figures against
the targets (issue 13): 0 server 5xx, 0 lost or doubled usage, 0 stuck jobs, p99 of /tts under load ≤ 2× idle.

    .venv/bin/python -m scripts.reliability_report [--quick] [--only fuzz,corpus,faults,load] [--out var/reliability]

Steps, each a script of its own writing its figures as JSON under --out:
  fuzz    python -m scripts.fuzz_api --json fuzz.json        the OpenAPI fuzz (schemathesis)
  corpus  python -m scripts.hostile_corpus --json corpus.json hostile inputs
  faults  python -m scripts.fault_matrix --json faults.json   faults injected, invariants checked
  load    python -m scripts.load_test --json load.json       the mixed workload on postgres + redis

A step whose script is missing, fails without writing its figures, or runs past its time is reported as
"not run: <reason>"; the report is written whatever happens. --quick runs each step small (fewer examples, a
15 s load from 4 clients; the corpus and the fault matrix get --quick when they offer it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as machine
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "var" / "reliability"
P99_FACTOR = 2.0


@dataclass(frozen=True)
class Step:
    name: str
    module: str  # scripts.<module>
    what: str
    args: Callable[[bool, Path], list[str]]  # (quick, json path) → its command-line arguments
    timeout_s: tuple[float, float]  # (quick, full)


def _offers(module: str, flag: str) -> bool:
    """Whether `python -m scripts.<module> --help` mentions `flag`."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"scripts.{module}", "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False
    return flag in done.stdout


def _fuzz_args(quick: bool, out: Path) -> list[str]:
    return ["--max-examples", "5" if quick else "25", "--json", str(out)]


def _corpus_args(quick: bool, out: Path) -> list[str]:
    return ["--json", str(out), *(["--quick"] if quick and _offers("hostile_corpus", "--quick") else [])]


def _faults_args(quick: bool, out: Path) -> list[str]:
    if quick:  # its own quick mode, else only the new matrix (tests/reliability), not every older fault test
        for flag in ("--quick", "--new-only"):
            if _offers("fault_matrix", flag):
                return ["--json", str(out), flag]
    return ["--json", str(out)]


def _load_args(quick: bool, out: Path) -> list[str]:
    size = ["--clients", "4", "--duration", "15"] if quick else ["--clients", "8", "--duration", "60"]
    return [*size, "--json", str(out)]


STEPS = (
    Step("fuzz", "fuzz_api", "OpenAPI fuzz (schemathesis)", _fuzz_args, (600, 3600)),
    Step("corpus", "hostile_corpus", "hostile corpus", _corpus_args, (600, 1800)),
    Step("faults", "fault_matrix", "fault matrix", _faults_args, (900, 2400)),
    Step("load", "load_test", "load test (postgres + redis)", _load_args, (900, 1500)),
)


@dataclass
class Outcome:
    step: Step
    figures: dict[str, Any] | None = None
    not_run: str | None = None  # why there are no figures
    exit_code: int | None = None
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)


def run_step(step: Step, out_dir: Path, quick: bool) -> Outcome:
    """Run one step's script, echoing its output (also kept in <out>/<name>.log) → its figures or why not."""
    outcome = Outcome(step)
    script = REPO / "scripts" / f"{step.module}.py"
    if not script.is_file():
        outcome.not_run = f"scripts/{step.module}.py does not exist yet"
        return outcome
    json_path = out_dir / f"{step.name}.json"
    json_path.unlink(missing_ok=True)  # figures from an earlier run must not pass for this one's
    command = [sys.executable, "-m", f"scripts.{step.module}", *step.args(quick, json_path)]
    print(f"\n=== {step.what}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    timeout = step.timeout_s[0] if quick else step.timeout_s[1]
    timed_out = threading.Event()
    with (out_dir / f"{step.name}.log").open("w") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )

        def stop() -> None:  # SIGTERM first: the load test then stops the platform it started
            timed_out.set()
            proc.send_signal(signal.SIGTERM)

        watchdog = threading.Timer(timeout, stop)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                log.write(line)
                outcome.output.append(line.rstrip("\n"))
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            watchdog.cancel()
    outcome.exit_code, outcome.seconds = proc.returncode, time.monotonic() - started
    if json_path.is_file():
        try:
            outcome.figures = json.loads(json_path.read_text())
        except json.JSONDecodeError as exc:
            outcome.not_run = f"{json_path.name} is not JSON: {exc}"
    if outcome.figures is None and outcome.not_run is None:
        last = next((line for line in reversed(outcome.output) if line.strip()), "no output")
        why = f"stopped after {timeout:.0f} s" if timed_out.is_set() else f"exit code {proc.returncode}"
        outcome.not_run = f"{why}, no figures written ({last[:200]})"
    return outcome


# ---- judging the targets -----------------------------------------------------------------------------------------


@dataclass
class Verdict:
    target: str
    figures: str
    result: str  # met | missed | not measured (+ what was not run)


def _judge(target: str, parts: dict[str, int | None]) -> Verdict:
    """A zero target over several sources: missed if any measured source is non-zero."""
    measured = {k: v for k, v in parts.items() if v is not None}
    figures = ", ".join(f"{k} {v}" for k, v in measured.items()) or "—"
    if not measured:
        return Verdict(target, figures, "not measured")
    result = "missed" if any(v for v in measured.values()) else "met"
    missing = [k for k in parts if k not in measured]
    if missing and result == "met":
        result += f" (not measured by: {', '.join(missing)})"
    return Verdict(target, figures, result)


def _get(outcomes: dict[str, Outcome], step: str, key: str) -> Any:
    figures = outcomes[step].figures if step in outcomes else None
    return figures.get(key) if figures else None


def verdicts(outcomes: dict[str, Outcome]) -> list[Verdict]:
    rows = [
        _judge(
            "0 server 5xx",
            {
                "fuzz": _get(outcomes, "fuzz", "server_5xx"),
                "corpus": _get(outcomes, "corpus", "server_5xx"),
                "load": _get(outcomes, "load", "server_5xx"),
            },
        ),
        _judge(
            "0 lost usage",
            {"faults": _get(outcomes, "faults", "lost_usage"), "load": _get(outcomes, "load", "lost_usage")},
        ),
        _judge(
            "0 doubled usage",
            {
                "faults": _get(outcomes, "faults", "doubled_usage"),
                "load": _get(outcomes, "load", "doubled_usage"),
            },
        ),
        _judge(
            "0 stuck jobs",
            {
                "faults": _get(outcomes, "faults", "stuck_jobs"),
                "load (personas not live)": _get(outcomes, "load", "personas_stuck"),
            },
        ),
    ]
    cases, failures = _get(outcomes, "fuzz", "cases"), _get(outcomes, "fuzz", "failures")
    target = "0 fuzz failures (schema, documented status, envelope)"
    if cases is None or failures is None:
        rows.append(Verdict(target, "—", "not measured"))
    else:
        rows.append(Verdict(target, f"{failures} of {cases} cases", "met" if failures == 0 else "missed"))
    faults, survived = _get(outcomes, "faults", "faults"), _get(outcomes, "faults", "survived")
    if faults is None or survived is None:
        rows.append(Verdict("every injected fault survived (invariants held)", "—", "not measured"))
    else:
        result = "met" if survived == faults else "missed"
        rows.append(
            Verdict("every injected fault survived (invariants held)", f"{survived} of {faults}", result)
        )
    idle, load = _get(outcomes, "load", "tts_idle_p99_ms"), _get(outcomes, "load", "tts_load_p99_ms")
    target = f"p99 of /tts under load ≤ {P99_FACTOR:g}× idle p99"
    if idle and load:
        ratio = load / idle
        result = "met" if ratio <= P99_FACTOR else "missed"
        rows.append(Verdict(target, f"idle {idle} ms, load {load} ms ({ratio:.2f}×)", result))
    else:
        rows.append(Verdict(target, "—", "not measured"))
    return rows


# ---- the Markdown ---------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return "—" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]


def _step_figures(o: Outcome) -> list[str]:
    f = o.figures or {}
    name = o.step.name
    if name == "fuzz":
        return [f"{f.get('cases')} cases over {f.get('operations_fuzzed')} operations, {f.get('failures')} failing,"
                f" {f.get('server_5xx')} server 5xx ({f.get('max_examples')} examples per operation and mode)."]  # fmt: skip
    if name == "corpus":
        failed = f.get("failed")
        listed = failed if isinstance(failed, list) else []  # a list of {case, problem}, or a count
        lines = [
            f"{f.get('cases')} hostile cases: {f.get('passed')} passed, "
            f"{len(listed) if isinstance(failed, list) else failed} failed, {f.get('server_5xx')} server 5xx."
        ]
        if listed:
            lines += [
                "",
                *_table(["failed case", "problem"], [[x.get("case"), x.get("problem")] for x in listed]),
            ]
        return lines
    if name == "faults":
        lines = [
            f"{f.get('survived')} of {f.get('faults')} faults survived; lost usage {f.get('lost_usage')}, "
            f"doubled usage {f.get('doubled_usage')}, stuck jobs {f.get('stuck_jobs')}.",
            "",
        ]
        rows = [
            [r.get("fault"), r.get("result"), r.get("invariants_ok"), r.get("test")]
            for r in f.get("rows", [])
        ]
        return lines + _table(["fault", "result", "invariants ok", "test"], rows)
    if name == "load":
        lines = [
            f'{f.get("clients")} clients × {f.get("duration_s")} s against `make run ARGS="{f.get("platform_args")}"`'
            f" (provider tier {f.get('tier')}): {f.get('requests')} requests, {f.get('throughput_rps')} req/s, "
            f"error rate {f.get('error_rate')}, {f.get('server_5xx')} server 5xx, {f.get('rate_limited_429')} "
            f"429 with Retry-After (counted apart). Usage: {f.get('usage_expected')} successful calls counted by "
            f"the clients, {f.get('usage_billed')} billed, {f.get('lost_usage')} lost, {f.get('doubled_usage')} "
            f"doubled. /tts p99 idle {f.get('tts_idle_p99_ms')} ms vs under load {f.get('tts_load_p99_ms')} ms. "
            f"Chat: {f.get('chat')}.",
            "",
        ]
        rows = [
            [n, e.get("count"), e.get("p50_ms"), e.get("p95_ms"), e.get("p99_ms"), e.get("errors"),
             e.get("rate_limited"), e.get("expected_4xx")]
            for n, e in (f.get("endpoints") or {}).items()
        ]  # fmt: skip
        return lines + _table(
            ["endpoint", "count", "p50 ms", "p95 ms", "p99 ms", "errors", "429", "409 dup"], rows
        )
    return [json.dumps(f)[:2000]]


def render(outcomes: dict[str, Outcome], quick: bool, started: str) -> str:
    lines = [
        "# Reliability report",
        "",
        f"{started} · {'quick' if quick else 'full'} run · {machine.platform()} · {os.cpu_count()} CPUs · "
        "`make reliability` (`python -m scripts.reliability_report`)",
        "",
        "## Targets",
        "",
        *_table(
            ["target", "figures", "result"], [[v.target, v.figures, v.result] for v in verdicts(outcomes)]
        ),
        "",
        "## Steps",
        "",
        *_table(
            ["step", "status", "seconds"],
            [
                [o.step.what, f"not run: {o.not_run}" if o.figures is None else _ran(o), round(o.seconds)]
                for o in outcomes.values()
            ],
        ),
    ]
    for o in outcomes.values():
        lines += ["", f"### {o.step.what}", ""]
        lines += [f"not run: {o.not_run}"] if o.figures is None else _step_figures(o)
    return "\n".join(lines) + "\n"


def _ran(o: Outcome) -> str:
    return "ran" if o.exit_code == 0 else f"ran (exit code {o.exit_code}; its figures were written)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="each step small (minutes, not an hour)")
    parser.add_argument("--only", help="a comma-separated subset of: " + ",".join(s.name for s in STEPS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the figures and report.md go")
    opts = parser.parse_args(argv)
    chosen = [s.strip() for s in opts.only.split(",")] if opts.only else [s.name for s in STEPS]
    unknown = set(chosen) - {s.name for s in STEPS}
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    opts.out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    outcomes: dict[str, Outcome] = {}
    for step in STEPS:
        if step.name not in chosen:
            continue
        try:
            outcomes[step.name] = run_step(step, opts.out, opts.quick)
        except Exception as exc:  # one broken step must not cost the report
            outcomes[step.name] = Outcome(step, not_run=f"{type(exc).__name__}: {exc}")
    report = render(outcomes, opts.quick, started)
    path = opts.out / "report.md"
    path.write_text(report)
    print("\n" + report)
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
