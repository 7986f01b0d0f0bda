"""The platform as `make run` serves it: `bentoml serve` with the SpeakerEncoder service as a dependency. Every
embedding — the upload's impersonation check, the pipeline's embed step, POST /embeddings — goes through that
service, and both services run the same Hydra overrides."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import platform_overrides, wait_for
from bentos.devkit.processes import bentoml_serve, free_port, terminate, wait_port_closed, wait_ready
from encoders.voices import VoiceSet

REPO = Path(__file__).resolve().parents[2]
CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}


@pytest.mark.slow  # `bentoml serve` with the default encoder (~20 s): in the slow pass, which CI runs
def test_a_served_platform_embeds_through_the_encoder_service_with_the_default_encoder(
    emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path
) -> None:
    port = free_port()
    overrides = platform_overrides(tmp_path / "data", emulator)  # the default encoder: fusion
    env = {
        **os.environ,
        "VOXPERSONA_OVERRIDES": " ".join(overrides),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    log = (tmp_path / "bentoml.log").open("wb")
    proc = subprocess.Popen(
        bentoml_serve("bentos.platform_service:PersonaPlatform", "127.0.0.1", port),
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/readyz", proc, timeout_s=180, what="the served platform")
        signup = httpx.post(
            f"{base}/accounts", json={"name": "S", "email": "s@example.com", "role": "creator"}
        )
        auth = {"Authorization": f"Bearer {signup.json()['apiKey']}"}
        with httpx.Client(base_url=base, headers=auth, timeout=60) as api:
            up = api.post("/files", files={"file": ("v.mp3", voice_set.clips[14].mp3_path.read_bytes())})
            assert up.status_code == 201, up.text
            created = api.post(
                "/voices", json={"fileId": up.json()["fileId"], "name": "Served", "consent": CONSENT}
            )
            voice_id = created.json()["voiceId"]

            def live() -> dict[str, object] | None:
                detail = api.get(f"/voices/{voice_id}").json()
                assert detail["status"] != "failed", detail["failure"]
                return detail if detail["status"] == "live" else None

            persona = wait_for(live, timeout=120, what="the served persona to go live")
            embedded = api.post("/embeddings", json={"fileId": up.json()["fileId"]}).json()
    finally:
        terminate(proc, timeout_s=30)
        wait_port_closed("127.0.0.1", port)
        log.close()
    assert persona["embedding"]["encoder"] == "fusion" and persona["embedding"]["pretrained"] is True
    # The same model served the pipeline and the API: the same audio gives the same vector and hash.
    assert embedded["encoder"] == "fusion" and embedded["hash"] == persona["embedding"]["hash"]
    assert embedded["dim"] == 512
