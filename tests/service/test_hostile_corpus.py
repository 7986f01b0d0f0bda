"""The hostile corpus (scripts/hostile_corpus.py) against the served platform: every case gets the status and
error code it states, the error envelope, and stores nothing unless it is valid by design (then its strings come
back verbatim, as data). The JSON cases run in the fast suite; the whole corpus (audio, slow-loris, personas) is
slow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bentos.api import guard
from bentos.devkit.harness import RunningPlatform
from scripts.hostile_corpus import (
    SLOW_BODY_TIMEOUT_S,
    Outcome,
    Target,
    all_cases,
    json_cases,
    prepare,
    run_case,
)


@pytest.fixture(scope="module")
def target(platform_server: RunningPlatform) -> Iterator[Target]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(guard, "BODY_IDLE_TIMEOUT_S", SLOW_BODY_TIMEOUT_S)
        _, key = platform_server.sign_up("creator")
        yield prepare(platform_server.base_url, key, platform_server)


def _failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.case.name}: {o.problem}" for o in outcomes if not o.passed]


@pytest.mark.slow  # with the whole corpus in the slow pass (CI runs both); `make reliability` reports it
def test_hostile_json_requests_get_their_error_and_store_nothing(target: Target) -> None:
    quick = [c for c in json_cases() if c.slow_loris is None and "personas" not in c.stores]
    assert len(quick) >= 30
    outcomes = [run_case(target, case) for case in quick]
    assert _failures(outcomes) == []
    assert not any(o.status and o.status >= 500 for o in outcomes)


@pytest.mark.slow
def test_the_whole_hostile_corpus_passes_without_a_5xx(target: Target) -> None:
    cases = all_cases(target.speech)
    assert len(cases) >= 40
    outcomes = [run_case(target, case) for case in cases]
    assert _failures(outcomes) == []
    assert not any(o.status and o.status >= 500 for o in outcomes)
    accepted = [o for o in outcomes if o.case.stores]
    assert all(o.status is not None and o.status < 300 for o in accepted)
    refused = [o for o in outcomes if not o.case.stores]
    assert all(not o.grew for o in refused)
