"""The breaker counts provider failures, not 429s; the limiter keeps calls inside the tier, shares it fairly, waits
a bounded time and says when to come back (issue "Reliability" §2)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
import pytest

from bentos.core.errors import ErrorCode, from_provider_error
from bentos.stepfun import StepFunClient
from bentos.stepfun.client import AsyncStepFunClient
from bentos.stepfun.errors import ProviderServerError, ProviderUnavailable, RateLimited
from bentos.stepfun.limiter import (
    CallerTag,
    ProviderBusy,
    ProviderLimiter,
    calling_as,
    current_caller,
    shared_limiter,
)
from bentos.stepfun.settings import TierSettings
from tests.stepfun.stepfun_helpers import fast_settings

BASE = "http://stepfun.test/v1"


def _answering(status: int, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = {
            "error": {"message": "nope", "type": "rate_limit_exceeded" if status == 429 else "server_error"}
        }
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handle)


def _ok_files() -> httpx.MockTransport:
    return httpx.MockTransport(lambda r: httpx.Response(200, json={"object": "list", "data": []}))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- the breaker ---------------------------------------------------------------------------------------------


def test_a_run_of_provider_429s_never_opens_the_breaker() -> None:
    settings = fast_settings(BASE, breaker_fail_max=3, max_attempts=2)
    with StepFunClient(settings, transport=_answering(429, {"Retry-After": "0"})) as client:
        for _ in range(10):  # 20 answered 429s, far past fail_max
            with pytest.raises(RateLimited):
                client.list_files()
        assert client.breaker.current_state == "closed"
        assert client.health.state == "ok"


def test_a_run_of_5xx_opens_the_breaker_and_its_refusal_says_when_to_come_back() -> None:
    settings = fast_settings(BASE, breaker_fail_max=3, max_attempts=1, breaker_reset_timeout_s=20)
    with StepFunClient(settings, transport=_answering(503)) as client:
        for _ in range(3):
            with pytest.raises(ProviderServerError):
                client.list_files()
        assert client.breaker.current_state == "open" and client.health.state == "degraded"
        with pytest.raises(ProviderUnavailable) as refused:
            client.list_files()
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 20
    mapped = from_provider_error(refused.value)
    assert mapped.status == 503 and mapped.retry_after is not None and 1 <= mapped.retry_after <= 20


def test_a_provider_429_maps_to_a_429_with_its_retry_after() -> None:
    mapped = from_provider_error(RateLimited("slow down", retry_after=2.2))
    assert (mapped.code, mapped.status, mapped.retry_after) == (ErrorCode.PROVIDER_RATE_LIMITED, 429, 3)
    assert from_provider_error(RateLimited("slow down")).retry_after == 1  # none sent: still an integer ≥ 1


# ---- the limiter ---------------------------------------------------------------------------------------------


def test_the_tier_rpm_is_shared_and_a_refusal_says_when_the_window_frees() -> None:
    clock = FakeClock()
    limiter = ProviderLimiter(TierSettings(rpm=10, concurrency=5, interactive_wait_s=2.0), clock=clock)
    one, two = CallerTag("acct-1", interactive=True), CallerTag("acct-2", interactive=True)
    for _ in range(5):
        limiter.acquire(one).release()
    with pytest.raises(ProviderBusy) as refused:  # acct-1's share (half of 10) is used up
        limiter.acquire(one)
    assert refused.value.retry_after == 61 and "your share" in refused.value.message
    for _ in range(5):  # acct-2 still gets its own share
        limiter.acquire(two).release()
    clock.now += 30
    with pytest.raises(ProviderBusy) as full:
        limiter.acquire(CallerTag("acct-3", interactive=True))  # the whole tier is used: 31 s to go
    assert full.value.retry_after == 31 and "all of" in full.value.message
    clock.now += 31
    limiter.acquire(one).release()  # the window moved on


def test_concurrency_is_capped_per_caller_and_per_tier_and_a_release_frees_a_slot() -> None:
    clock = FakeClock()
    limiter = ProviderLimiter(TierSettings(concurrency=4, interactive_wait_s=0), clock=clock)
    one = CallerTag("acct-1", interactive=True)
    held = [limiter.acquire(one), limiter.acquire(one)]
    with pytest.raises(ProviderBusy) as refused:  # half of 4 in flight is acct-1's share
        limiter.acquire(one)
    assert refused.value.retry_after == 1
    held += [limiter.acquire(CallerTag("acct-2", interactive=True)) for _ in range(2)]
    with pytest.raises(ProviderBusy):
        limiter.acquire(CallerTag("acct-3", interactive=True))  # the tier's 4 are in flight
    held[0].release()
    held[0].release()  # idempotent
    assert limiter.snapshot()["in_flight"] == 3
    held.append(limiter.acquire(one))
    for permit in held:
        permit.release()
    assert limiter.snapshot()["in_flight"] == 0


def test_a_waiting_thread_gets_the_slot_a_finishing_call_frees_within_its_budget() -> None:
    limiter = ProviderLimiter(TierSettings(concurrency=1, caller_share=1, interactive_wait_s=30))
    first = limiter.acquire(CallerTag("a", interactive=True))
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire(CallerTag("b", interactive=True))))
    waiter.start()
    first.release()
    waiter.join(timeout=10)
    assert got and limiter.snapshot()["in_flight"] == 1


def test_many_threads_never_exceed_the_tier_concurrency() -> None:
    limiter = ProviderLimiter(TierSettings(concurrency=3, caller_share=1, background_wait_s=30))
    in_flight, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        permit = limiter.acquire(CallerTag("pipeline", interactive=False))
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        with lock:
            in_flight[0] -= 1
        permit.release()

    threads = [threading.Thread(target=work) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert peak[0] <= 3 and limiter.snapshot()["in_flight"] == 0


def test_asyncio_callers_wait_without_blocking_the_loop_and_respect_their_budget() -> None:
    async def scenario() -> None:
        limiter = ProviderLimiter(TierSettings(concurrency=2, caller_share=0.5, interactive_wait_s=0.3))
        held = await limiter.acquire_async(CallerTag("a", interactive=True))
        with pytest.raises(ProviderBusy):  # acct a's 1 slot is held and stays held past the budget
            await limiter.acquire_async(CallerTag("a", interactive=True))

        async def free_soon() -> None:
            await asyncio.sleep(0.05)
            held.release()

        waiter = asyncio.create_task(limiter.acquire_async(CallerTag("a", interactive=True)))
        await asyncio.gather(free_soon(), waiter)
        waiter.result().release()

    asyncio.run(scenario())


def test_the_caller_tag_follows_the_context() -> None:
    assert current_caller() == CallerTag("pipeline", interactive=False)
    with calling_as("acct-9", interactive=True):
        assert current_caller() == CallerTag("acct-9", interactive=True)
    assert current_caller().key == "pipeline"


# ---- the limiter in front of the clients ---------------------------------------------------------------------


def _refusing_limiter() -> Callable[[], ProviderLimiter]:
    return lambda: ProviderLimiter(
        TierSettings(rpm=2, caller_share=1, interactive_wait_s=0, background_wait_s=0)
    )


def test_a_refused_call_sends_nothing_and_never_counts_toward_the_breaker() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    settings = fast_settings(BASE, breaker_fail_max=1)
    limiter = _refusing_limiter()()
    with StepFunClient(settings, transport=httpx.MockTransport(handle), limiter=limiter) as client:
        client.list_files()
        client.list_files()
        for _ in range(5):
            with pytest.raises(ProviderBusy) as refused:
                client.list_files()
        assert len(sent) == 2 and client.breaker.current_state == "closed"
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    mapped = from_provider_error(refused.value)
    assert (mapped.status, mapped.code) == (429, ErrorCode.PROVIDER_RATE_LIMITED) and mapped.retry_after


def test_the_async_client_holds_its_permit_until_the_stream_is_read() -> None:
    async def scenario() -> None:
        limiter = ProviderLimiter(TierSettings(concurrency=1, caller_share=1, interactive_wait_s=0))

        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/files"):
                return httpx.Response(200, json={"object": "list", "data": []})
            return httpx.Response(200, content=b"ID3" + b"\0" * 64, headers={"content-type": "audio/mpeg"})

        audio = httpx.MockTransport(handle)
        async with AsyncStepFunClient(fast_settings(BASE), transport=audio, limiter=limiter) as client:
            with calling_as("acct-1", interactive=True):
                stream = client.stream_speech(model="step-tts-2", voice="v", input="hi")
                first = await anext(stream)
                assert first and limiter.snapshot()["in_flight"] == 1
                with pytest.raises(ProviderBusy):
                    await client.list_files()
                async for _ in stream:
                    pass
            assert limiter.snapshot()["in_flight"] == 0
            await client.list_files()

    asyncio.run(scenario())


def test_clients_of_one_account_share_one_limiter_and_no_tier_means_none() -> None:
    tiered = fast_settings(BASE, tier={"rpm": 10, "concurrency": 5})
    with StepFunClient(tiered, transport=_ok_files()) as a:
        b = AsyncStepFunClient(tiered, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
        assert a.limiter is not None and a.limiter is b.limiter is shared_limiter(tiered)
    assert shared_limiter(fast_settings(BASE)) is None
    assert shared_limiter(fast_settings(BASE, tier={"rpm": 0, "concurrency": 0})) is None
