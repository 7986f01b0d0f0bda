"""Long texts: where they are split (Chinese and English), and how their parts' audio becomes one stream."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from bentos.core.longform import AudioJoiner, JoinError, sentences, split_text
from bentos.stepfun.emulator.codec import encode, stream_encode

RATE = 24000


def test_english_sentences_end_at_punctuation_followed_by_space_never_inside_a_word() -> None:
    text = "It costs 3.14 dollars. Really? Yes! See e.g.this; then stop.\nNext line"
    assert sentences(text) == [
        "It costs 3.14 dollars. ",
        "Really? ",
        "Yes! ",
        "See e.g.this; ",
        "then stop.\n",
        "Next line",
    ]


def test_chinese_sentences_end_at_full_width_punctuation_and_ellipses() -> None:
    text = "今天天气很好。我们去公园吧！真的吗？是的；好……结束"
    assert sentences(text) == ["今天天气很好。", "我们去公园吧！", "真的吗？", "是的；", "好……", "结束"]


def test_parts_pack_whole_sentences_up_to_the_limit_and_keep_every_character() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten."
    parts = split_text(text, 32)
    assert parts == ["One two three. Four five six. ", "Seven eight nine. Ten."]
    assert "".join(parts) == text


def test_a_sentence_longer_than_the_limit_is_cut_at_a_comma_then_at_a_space() -> None:
    text = "alpha beta gamma delta, epsilon zeta eta theta iota kappa lambda mu."
    parts = split_text(text, 30)
    assert "".join(parts) == text and all(len(p) <= 30 for p in parts)
    assert parts[0] == "alpha beta gamma delta, "  # the comma in the second half
    assert all(p.endswith((" ", ".")) for p in parts)  # never mid-word


def test_chinese_without_sentence_ends_is_cut_at_commas() -> None:
    text = "，".join(["中文字符"] * 30)
    parts = split_text(text, 20)
    assert "".join(parts) == text
    assert all(len(p) <= 20 for p in parts) and all(p.endswith("，") for p in parts[:-1])


def test_a_short_first_part_starts_a_long_text_and_the_rest_fill_the_per_call_limit() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve. Thirteen."
    parts = split_text(text, 40, first_max_chars=16)
    assert parts == ["One two three. ", "Four five six. Seven eight nine. ", "Ten eleven twelve. Thirteen."]
    assert split_text("Short. Text.", 40, first_max_chars=16) == ["Short. Text."]


def test_a_mixed_long_text_splits_into_speakable_parts_within_the_limit() -> None:
    text = ("你好，世界。Hello there, friend! " * 80).strip() + "……"
    parts = split_text(text, 1000)
    assert len(parts) == 3 and "".join(parts) == text
    assert all(len(p) <= 1000 for p in parts)
    assert all(any(c.isalnum() for c in p) for p in parts)


def _tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _join(fmt: str, parts: list[bytes], chunk: int = 1000) -> tuple[bytes, list[int]]:
    joiner = AudioJoiner(fmt, RATE)
    out, durations = bytearray(), []
    for part in parts:
        for i in range(0, len(part), chunk):  # delivered in pieces, headers split across them
            out += joiner.feed(part[i : i + chunk])
        tail, ms = joiner.end_part()
        out += tail
        durations.append(ms)
    return bytes(out), durations


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_parts_join_into_one_decodable_audio_as_long_as_its_parts(fmt: str) -> None:
    lengths = [1.0, 0.5, 1.5]
    parts = [encode(_tone(s, 200 + 100 * i), RATE, fmt) for i, s in enumerate(lengths)]
    joined, durations = _join(fmt, parts)
    audio, rate = sf.read(io.BytesIO(joined))
    assert rate == RATE
    # MP3 pads every part's end to whole frames (tens of ms): the joined audio is the sum of its parts.
    assert audio.shape[0] / rate == pytest.approx(sum(durations) / 1000, rel=0.02)
    assert [d / 1000 for d in durations] == pytest.approx(lengths, abs=0.08)


def test_streamed_wav_parts_with_unknown_lengths_join_too() -> None:
    parts = [b"".join(stream_encode(iter([_tone(0.5)]), RATE, "wav")) for _ in range(3)]
    joined, durations = _join("wav", parts)
    assert joined.count(b"RIFF") == 1
    audio, _ = sf.read(io.BytesIO(joined))
    assert audio.shape[0] == 3 * int(RATE * 0.5) and durations == [500, 500, 500]


def test_pcm_parts_are_concatenated_as_they_are() -> None:
    parts = [encode(_tone(0.25), RATE, "pcm") for _ in range(2)]
    joined, durations = _join("pcm", parts)
    assert joined == b"".join(parts) and durations == [250, 250]


def test_a_part_in_another_format_is_refused() -> None:
    joiner = AudioJoiner("wav", RATE)
    with pytest.raises(JoinError):
        joiner.feed(encode(_tone(0.2), RATE, "mp3"))
