"""SpeakerEncoderService: the class directly (config and registry sources), then over HTTP with `bentoml
serve`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import pytest

from bentos.core.config import load_config
from bentos.core.encoder_runtime import EncoderChoice, EncoderRuntime, embed_with_retry
from bentos.devkit.processes import bentoml_serve, free_port, terminate, wait_port_closed, wait_ready
from encoders.base import embedding_hash
from encoders.ge2e import GE2EEncoder
from encoders.registry import RegistrySettings, log_encoder, set_champion

REPO = Path(__file__).resolve().parents[2]


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def _service(monkeypatch: pytest.MonkeyPatch, **env: str):  # type: ignore[no-untyped-def]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from bentos.encoder_service import SpeakerEncoderService

    return SpeakerEncoderService.inner()


def test_service_embeds_a_batch_with_the_configured_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(monkeypatch, VOXPERSONA_OVERRIDES="encoder=ge2e encoder_source=config")
    clips = [_noise(5, 0), _noise(8, 1)]
    results = service.embed(clips)
    assert [r["encoder"] for r in results] == ["ge2e", "ge2e"]
    assert all(r["dim"] == 256 and r["pretrained"] is True for r in results)
    direct = GE2EEncoder().embed_arrays(clips, 16000)
    for result, vector in zip(results, direct, strict=True):
        assert np.allclose(result["vector"], vector, atol=1e-5)
        assert result["hash"] == embedding_hash(np.asarray(result["vector"], dtype=np.float32))
    assert service.info()["encoder"] == "ge2e"


def test_service_follows_the_registry_champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    settings = RegistrySettings(artifact_root=str(tmp_path / "artifacts"))
    ge2e = GE2EEncoder()
    cfg = {"_target_": "encoders.ge2e.GE2EEncoder", "weights": None}
    first, second = log_encoder(ge2e, cfg, settings=settings), log_encoder(ge2e, cfg, settings=settings)
    set_champion("ge2e", first.version, settings=settings)
    env = {"VOXPERSONA_OVERRIDES": "encoder=ge2e encoder_source=registry"}
    assert _service(monkeypatch, **env).embed([_noise(5, 2)])[0]["version"] == "speaker-encoder-ge2e/1"
    set_champion("ge2e", second.version, settings=settings)  # switch the alias, "restart": no code change
    assert _service(monkeypatch, **env).embed([_noise(5, 2)])[0]["version"] == "speaker-encoder-ge2e/2"


def test_retry_rides_out_a_replaced_bentoml_session_but_not_real_errors() -> None:
    calls: list[int] = []

    async def flaky(clips: list[np.ndarray]) -> list[int]:
        calls.append(len(clips))
        if len(calls) == 1:
            raise aiohttp.ServerDisconnectedError()
        return [len(c) for c in clips]

    assert asyncio.run(embed_with_retry(flaky, [_noise(1, 0)])) == [16000]
    assert len(calls) == 2

    async def broken(clips: list[np.ndarray]) -> list[int]:
        calls.append(0)
        raise ValueError("bad audio")

    calls.clear()
    with pytest.raises(ValueError):
        asyncio.run(embed_with_retry(broken, [_noise(1, 0)]))
    assert calls == [0]


def test_runtime_rejects_empty_clips() -> None:
    runtime = EncoderRuntime.from_choice(EncoderChoice.from_config(load_config(["encoder=seeded"])))
    with pytest.raises(ValueError, match="empty"):
        runtime.embed_arrays([np.zeros(0, np.float32)])


@contextlib.contextmanager
def _served(target: str, tmp_path: Path, encoder: str = "seeded") -> Iterator[str]:
    """`bentoml serve target` on a free port until /readyz answers; SIGTERM and wait for the port to close after."""
    port = free_port()
    env = {
        **os.environ,
        "VOXPERSONA_OVERRIDES": f"encoder={encoder}",
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    proc = subprocess.Popen(
        bentoml_serve(target, "127.0.0.1", port),
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(f"{url}/readyz", proc, timeout_s=90, what="the encoder service")
        except RuntimeError:
            raise AssertionError(proc.stderr.read().decode()[-2000:] if proc.stderr else "exited") from None
        yield url
    finally:
        terminate(proc, timeout_s=30)
        assert wait_port_closed("127.0.0.1", port, timeout_s=30), "port still open 30 s after SIGTERM"


def test_service_over_http_batches_concurrent_requests(tmp_path: Path) -> None:
    clips = [_noise(5, i) for i in range(8)]
    with _served("bentos.encoder_service:SpeakerEncoderService", tmp_path) as url:

        async def call_all() -> list[dict]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                responses = await asyncio.gather(
                    *(client.post("/embed", json={"clips": [c.tolist()]}) for c in clips)
                )
            assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
            return [r.json()[0] for r in responses]

        results = asyncio.run(call_all())
        assert [r["encoder"] for r in results] == ["seeded"] * 8
        assert len({r["hash"] for r in results}) == 8  # different audio → different vectors, in request order
        again = httpx.post(f"{url}/embed", json={"clips": [clips[3].tolist()]}, timeout=30).json()
        assert again[0]["hash"] == results[3]["hash"]


def test_dependency_calls_survive_bentoml_session_swaps(tmp_path: Path) -> None:
    # bentoml/BentoML#5540, #5544: the depends() client replaces its session after 100 calls while calls are in
    # flight. A front service that depends on the encoder makes 110 sequential calls, then 16 concurrent ones.
    with _served("scripts.bench_encoders:EncoderBenchFront", tmp_path) as url:
        outcome = httpx.post(f"{url}/stress", json={"sequential": 110, "concurrent": 16}, timeout=120).json()
    assert outcome == {"calls": 126, "failures": 0, "wrong": 0}
