"""Fuzz the platform's own OpenAPI with schemathesis: every operation, authenticated as a creator, every default
check (no 5xx, response schema, status code, content type, headers, negative data rejected, positive accepted,
auth not ignored, …) plus our own: each error is the one envelope, each status is one the operation documents by
number (not only by the `4XX` range), and a 401 only ever answers a missing or bad API key.

    .venv/bin/python -m scripts.fuzz_api [--max-examples 100] [--seed 0] [--json var/reliability/fuzz.json]

Runs the real platform in process (the StepFun emulator, SQLite, the job queue, uvicorn on loopback), prints a
table of operations × cases × failures and writes bench_results/fuzz.json. Targets: 0 failures (0 5xx, 0 schema
violations, every error in `{"error": {"code", "message", "retryable"}}`). The slow test
tests/service/test_fuzz_openapi.py runs the same fuzz with a few examples per operation.

`POST /files` is fuzzed too, but only its refusals are meaningful: the generated multipart bodies are random
bytes, never 5–10 s of speech, so they exercise auth, the multipart parser and format detection (415/422), not
the audio intake (which tests/encoders and tests/service cover with real voices). `DELETE
/accounts/me/keys/current` is sent with a freshly issued key each time, so it never revokes the fuzzer's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import (
    EMULATOR_KEY,
    RunningPlatform,
    platform_overrides,
    start_platform,
    wait_for,
)
from encoders.voices import DEFAULT_CACHE, make_voices
from scripts.bench_common import print_table, write_results

ENVELOPE_KEYS = {"code", "message", "retryable"}
REVOKE_CURRENT_KEY = "DELETE /accounts/me/keys/current"
# Operations that end the caller's own identity run with a throwaway account, never the fuzzer's.
ERASE_ACCOUNT = ("DELETE /accounts/me", "DELETE /sessions/current")
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SPEECH_OPERATIONS = ("POST /tts", "POST /v1/audio/speech")
# Rules across fields that JSON Schema can't say (the provider contract's per-model options): a schema-valid
# body may break them and get `invalid_request` with one of these messages.
CROSS_FIELD_RULES = ("is only supported on", "is not supported for")
# Limits the server is configured with, below the schema's hard caps (GET /v1/limits says them): the quote's
# `chars` is documented up to the hard cap of any text, 10,000; the configured `tts.maxChars` is lower.
CONFIGURED_LIMITS = ("chars must be 1–",)


class EnvelopeViolation(Failure):
    """An error answer that is not `{"error": {"code", "message", "retryable"}}`."""


class UndocumentedStatus(Failure):
    """A status the operation documents only through a `4XX`/`5XX` range, not by number."""


class UnexpectedUnauthenticated(Failure):
    """A 401 answered to a request that carried a valid API key."""


class SchemaDisagreement(Failure):
    """A schema-valid request refused as `invalid_request`: the server validates differently from its schema."""


def _failure(kind: type[Failure], case: Case, title: str, message: str) -> Failure:
    return kind(operation=case.operation.label, title=title, message=message)


def platform_checks(api_key: str) -> list[Any]:
    """Our checks on top of schemathesis' defaults (each a schemathesis check function)."""

    def error_envelope(ctx: Any, response: Response, case: Case) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except Exception:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and set(body) == {"error"} and isinstance(error, dict)):
            raise _failure(EnvelopeViolation, case, "Not the error envelope", response.text[:300])
        if set(error) != ENVELOPE_KEYS or not isinstance(error["retryable"], bool):
            raise _failure(EnvelopeViolation, case, "Not the error envelope", response.text[:300])

    def status_documented_by_number(ctx: Any, response: Response, case: Case) -> None:
        documented = set(case.operation.definition.raw.get("responses", {}))
        if str(response.status_code) not in documented:
            raise _failure(
                UndocumentedStatus,
                case,
                f"Status {response.status_code} is not documented by number",
                f"documented: {sorted(documented)}",
            )

    def unauthenticated_only_without_a_key(ctx: Any, response: Response, case: Case) -> None:
        sent = response.request.headers.get("authorization") or ""
        # A wrong email + password is refused as such whatever key comes with it (POST /sessions).
        wrong_password = _error_code(response) == "invalid_credentials"
        if response.status_code == 401 and sent == f"Bearer {api_key}" and not wrong_password:
            raise _failure(UnexpectedUnauthenticated, case, "401 with a valid API key", response.text[:300])

    def schema_valid_is_valid(ctx: Any, response: Response, case: Case) -> None:
        if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
            return
        refused = response.status_code in (413, 422) and _error_code(response) in (
            "invalid_request",
            "request_too_large",
        )
        if refused and not any(rule in response.text for rule in CROSS_FIELD_RULES + CONFIGURED_LIMITS):
            raise _failure(SchemaDisagreement, case, "Schema-valid request refused", response.text[:300])

    return [
        error_envelope,
        status_documented_by_number,
        unauthenticated_only_without_a_key,
        schema_valid_is_valid,
    ]


def _config() -> SchemathesisConfig:
    """Schemathesis' defaults, with 413 counted as refusing schema-violating data: an oversized value (a text over
    its maxLength of multi-byte characters) can outgrow the request guard's body limit before the schema is
    checked, and 413 `request_too_large` is then the right refusal."""
    expected = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
    return SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": expected}}}
    )


def _error_code(response: Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return None


@dataclass
class OperationStats:
    operation: str
    cases: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def record(self, response: Response | None, failures: list[Failure]) -> None:
        self.cases += 1
        if response is not None:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if failures:
            self.failures += 1
        for failure in failures:
            name = type(failure).__name__
            self.kinds[name] = self.kinds.get(name, 0) + 1
            if len(self.examples) < 5:
                answer = f"{response.status_code} {response.text[:200]}" if response is not None else "-"
                self.examples.append(f"{name}: {failure.title}: {failure.message[:300]} ← {answer}")

    def row(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "cases": self.cases,
            "failures": self.failures,
            "statuses": " ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items())),
            "kinds": " ".join(f"{k}×{n}" for k, n in sorted(self.kinds.items())),
        }


def fuzz(
    base_url: str, api_key: str, max_examples: int, seed: int | None = 0, voice_id: str | None = None
) -> list[OperationStats]:
    """Every operation of the platform at `base_url`, `max_examples` cases per generation mode (positive and
    negative), each validated by every default check and ours; failures are counted, never raised.

    With `voice_id` (a live persona of the key's account), the operations on a persona get a third pass of
    positive cases aimed at it (its id in the path, or as the `voice` of a speech body), so they get past 404;
    `DELETE /voices/{voice_id}` is left out of that pass (it would revoke the persona)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=_config())
    auth = {"Authorization": f"Bearer {api_key}"}
    extra = platform_checks(api_key)
    results: list[OperationStats] = []
    with httpx.Client(base_url=base_url, headers=auth, timeout=30) as client:
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # the platform's own schema is valid
            stats = OperationStats(operation.label)
            results.append(stats)
            passes: list[tuple[GenerationMode, dict[str, Any], str | None]] = [(m, {}, None) for m in MODES]
            if voice_id and operation.method.upper() != "DELETE":
                if "{voice_id}" in operation.path:
                    passes.append(
                        (GenerationMode.POSITIVE, {"path_parameters": {"voice_id": voice_id}}, None)
                    )
                elif operation.label in SPEECH_OPERATIONS:
                    passes.append((GenerationMode.POSITIVE, {}, voice_id))
            for mode, fixed, body_voice in passes:
                run = settings(
                    max_examples=max_examples,
                    deadline=None,
                    database=None,
                    derandomize=seed is not None,
                    suppress_health_check=list(HealthCheck),
                )(
                    given(case=operation.as_strategy(generation_mode=mode, **fixed))(
                        _runner(client, auth, base_url, extra, stats, body_voice)
                    )
                )
                if seed is not None:
                    run = hypothesis_seed(seed)(run)
                # Unsatisfiable: nothing to make invalid (no parameters, no body), so no negative cases.
                with contextlib.suppress(Unsatisfiable):
                    run()
    return results


def _runner(
    client: httpx.Client,
    auth: dict[str, str],
    base_url: str,
    extra: list[Any],
    stats: OperationStats,
    body_voice: str | None,
) -> Callable[[Case], None]:
    """The test body for one operation's pass: send each case (as `auth`), check it, count it in `stats`."""

    def one(case: Case) -> None:
        if body_voice and isinstance(case.body, dict):
            case.body["voice"] = body_voice
        headers = dict(auth)
        if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
            headers = {}  # the case's own (missing or broken) Authorization is the point
        elif case.operation.label == REVOKE_CURRENT_KEY:  # never revoke the fuzzer's own key
            fresh = client.post("/accounts/me/keys")
            headers = {"Authorization": f"Bearer {fresh.json()['apiKey']}"}
        elif case.operation.label in ERASE_ACCOUNT:  # nor erase its account
            email = f"throwaway-{secrets.token_hex(6)}@example.com"
            body = {"name": "Throwaway", "email": email, "role": "consumer"}
            fresh = httpx.post(f"{base_url}/accounts", json=body, timeout=30)  # signed up anonymously
            headers = {"Authorization": f"Bearer {fresh.json()['apiKey']}"}
        stats.record(*_call_and_check(case, base_url, headers, extra))

    return one


def _call_and_check(
    case: Case, base_url: str, headers: dict[str, str], extra: list[Any]
) -> tuple[Response | None, list[Failure]]:
    """Send `case`, run every default check (positive_data_acceptance replaced by ours) → the failures."""
    response: Response | None = None
    try:
        response = case.call(base_url=base_url, headers=headers)
        case.validate_response(
            response,
            additional_checks=extra,
            excluded_checks=[positive_data_acceptance],
            headers=headers,
            transport_kwargs={"base_url": base_url, "headers": headers},
        )
    except FailureGroup as group:
        return response, list(group.exceptions)
    except Failure as failure:
        return response, [failure]
    return response, []


@contextmanager
def fuzz_target(state: Path) -> Iterator[tuple[str, str, str]]:
    """The platform in process on the emulator → (base URL, a creator's API key, that creator's live persona)."""
    with EmulatorProcess(
        state / "emulator", api_keys=(EMULATOR_KEY,), rpm=0, concurrency=64, max_candidates=4
    ) as emu:
        running = start_platform(platform_overrides(state / "platform", emu))
        try:
            _, key = running.sign_up("creator", wallet="0x" + "ab" * 20)
            yield running.base_url, key, live_persona(running, key)
        finally:
            running.stop()


def live_persona(running: RunningPlatform, key: str) -> str:
    """A public live persona of `key`'s account, from a generated voice → its id."""
    creator = running.client(key)
    audio = make_voices(DEFAULT_CACHE, speakers=6, utterances=3).clips[0].mp3_path.read_bytes()
    up = creator.post("/files", files={"file": ("voice.mp3", audio, "audio/mpeg")})
    up.raise_for_status()
    consent = {"attested": True, "statement": "This is my own voice and I consent."}
    body = {"fileId": up.json()["fileId"], "name": "Fuzzed", "visibility": "public", "consent": consent}
    created = creator.post("/voices", json=body)
    created.raise_for_status()
    voice_id = str(created.json()["voiceId"])

    def live() -> bool:
        status = creator.get(f"/voices/{voice_id}").json()["status"]
        if status == "failed":
            raise RuntimeError(f"the persona failed: {creator.get(f'/voices/{voice_id}').text}")
        return bool(status == "live")

    wait_for(live, timeout=120, what="the persona to go live")
    return voice_id


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=100, help="cases per operation and mode")
    parser.add_argument("--seed", type=int, default=0, help="-1: a random run")
    parser.add_argument(
        "--json", type=Path, help="also write the figures here ({cases, failures, server_5xx, operations, …})"
    )
    args = parser.parse_args()
    seed = None if args.seed < 0 else args.seed
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, fuzz_target(Path(tmp)) as (base_url, key, voice_id):
        stats = fuzz(base_url, key, args.max_examples, seed, voice_id)
    elapsed = time.perf_counter() - start
    rows = [s.row() for s in stats]
    total = {"cases": sum(s.cases for s in stats), "failures": sum(s.failures for s in stats)}
    print_table(f"schemathesis fuzz, {args.max_examples} examples per operation and mode", rows)
    print(f"\n{total['cases']} cases, {total['failures']} failing, {elapsed:.0f} s")
    for s in stats:
        for example in s.examples:
            print(f"  {s.operation}: {example}")
    figures = {
        "max_examples": args.max_examples,
        "seed": seed,
        "schemathesis": schemathesis.__version__,
        "seconds": round(elapsed, 1),
        "total": total,
        "operations": [
            {**s.row(), "statuses": s.statuses, "kinds": s.kinds, "examples": s.examples} for s in stats
        ],
    }
    write_results("fuzz", figures)
    if args.json is not None:  # the reliability report's copy: the totals at the top level
        server_5xx = sum(n for s in stats for status, n in s.statuses.items() if status >= 500)
        summary = {**total, "operations_fuzzed": len(stats), "server_5xx": server_5xx, **figures}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
