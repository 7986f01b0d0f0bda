"""Generate offers the voice labels the chosen model takes, as choices glossed in English, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.frontend.fake_platform import FakePlatform
from tests.frontend.test_frontend_pages import page_text, widget

OpenApp = Callable[..., AppTest]


def styles_offered(app: AppTest) -> list[str]:
    widget(app.selectbox, "Voice label").select("style").run()
    return list(widget(app.selectbox, "Label value").options)


def test_a_style_only_step_tts_2_takes_is_offered_only_with_step_tts_2(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    creator, key = fake.new_account("Label Picker")
    persona = fake.add_live_persona(creator["id"], "Soft Speaker", model="step-tts-mini")
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    assert "温柔 · gentle" not in styles_offered(app)
    widget(app.selectbox, "Model").select("step-tts-2").run()
    assert "温柔 · gentle" in styles_offered(app)

    widget(app.selectbox, "Label value").select("温柔").run()
    app.text_area[0].input("Gently now.").run()
    next(b for b in app.button if b.label == "Generate").click().run()
    assert not app.error, page_text(app)
    assert app.get("audio")


def test_a_model_the_platform_lists_without_labels_offers_none(open_app: OpenApp, fake: FakePlatform) -> None:
    assert fake.limits is not None
    labels: dict[str, Any] = fake.limits["tts"]["modelLabels"]
    labels["step-tts-mini"] = {}
    creator, key = fake.new_account("No Labels")
    persona = fake.add_live_persona(creator["id"], "Plain Speaker", model="step-tts-mini")
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    assert not [s for s in app.selectbox if s.label == "Voice label"]
    assert "step-tts-mini takes no voice label." in page_text(app)
