"""The Create page tells the truth: the role check comes before the form, the chosen file plays before it is
sent, the running step (not the last finished one) with an estimate, state kept per account, human words first."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from streamlit_app import pipeline
from tests.frontend.fake_platform import FakePlatform, default_limits, tone_wav
from tests.frontend.test_frontend_pages import page_text, rerun_until

OpenApp = Callable[..., AppTest]


def test_a_consumer_learns_before_the_form_that_creating_needs_a_creator_account(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    _, key = fake.new_account("Just Listening", role="consumer")
    app = open_app("views/create.py", api_key=key)
    assert "needs a **creator** account" in page_text(app)
    assert not app.file_uploader and not app.text_input  # no form to fill in vain


def test_the_chosen_file_plays_before_it_is_sent_and_the_limit_is_the_platforms(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    _, key = fake.new_account("Listener First")
    app = open_app("views/create.py", api_key=key)
    assert app.file_uploader[0].proto.max_upload_size_mb == 20  # 20 MiB, not Streamlit's 200MB
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    assert app.get("audio"), page_text(app)  # a player for the file, before "Create persona"


def test_errors_lead_with_plain_words_and_keep_the_code_in_small_print(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    _, key = fake.new_account("Short Take")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("short.wav", tone_wav(2.0), "audio/wav")
    app.run()
    error = app.error[0].value
    assert not error.startswith("**`") and "`audio_too_short`" in error
    assert error.index("audio_too_short") > error.index("Use a longer recording")
    assert ":small[" in error


def test_progress_names_the_running_step_with_an_estimate(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Watcher")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Watched Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    steps = next(c.value for c in app.caption if "Audio checked" in c.value)
    running = steps.split("⏳ ")[1].split(" · ")[0]  # e.g. "**Registering on chain…**"
    assert running.strip("*").removesuffix("…") in pipeline.RUNNING_LABELS.values(), steps
    bar = app.get("progress")[0].proto.text
    assert bar.startswith(running.strip("*").removesuffix("…")) and bar.endswith("s left"), bar
    rerun_until(app, lambda a: any("is live" in s.value for s in a.success))


def test_the_estimate_counts_down_the_steps_left() -> None:
    states = default_limits()["pipeline"]
    assert pipeline.running_step("registered", states) == "cloned"
    assert pipeline.running_label("cloned") == "Cloning the voice"
    at_registered = pipeline.seconds_left("registered", states)
    assert at_registered > pipeline.seconds_left("cloned", states) > 0
    assert pipeline.seconds_left("registered", states, in_step_s=20) < at_registered
    assert pipeline.seconds_left("live", states) == 0 and pipeline.running_step("live", states) is None


def test_switching_accounts_does_not_show_the_previous_accounts_pipeline(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    _, first_key = fake.new_account("First Maker")
    _, second_key = fake.new_account("Second Maker")
    app = open_app("views/create.py", api_key=first_key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("First's Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    assert "Bringing it to life" in page_text(app)

    app.session_state["vp_api_key"] = second_key  # another account signs in in the same browser session
    app.session_state["vp_account"] = None
    app.run()
    text = page_text(app)
    assert "Second Maker" in text and "Bringing it to life" not in text and "First's Voice" not in text
    assert app.file_uploader  # a fresh form


def test_public_needs_a_recorded_consent_before_anything_is_sent(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    _, key = fake.new_account("Going Public")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    next(s for s in app.selectbox if s.label == "Visibility").select("public").run()
    app.text_input[0].input("Public Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    assert "needs your consent sentence recorded" in " ".join(e.value for e in app.error) or app.get(
        "audio_input"
    )
    assert not [r for r in fake.requests if r.path == "/voices" and r.method == "POST"]
