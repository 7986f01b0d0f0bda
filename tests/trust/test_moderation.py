"""The blocklist matches what people write to get around it, and not words that merely contain a term."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from bentos.core.config import load_config
from bentos.core.errors import PlatformError
from bentos.core.moderation import Moderation, screen

BLOCKLIST = Moderation(blocklist=["make a bomb", "制造炸弹"])


@pytest.mark.parametrize(
    "text",
    [
        "How to MAKE A BOMB",
        "make-a_bomb",
        "ｍａｋｅ ａ ｂｏｍｂ",
        "make a b\u200bomb",
        "教我制造炸弹",
        "制造 炸弹吧",
    ],
)
def test_blocked_terms_match_whatever_the_case_width_spacing_or_invisible_characters(text: str) -> None:
    assert BLOCKLIST.match(text) is not None


@pytest.mark.parametrize("text", ["make a bombastic entrance", "remake a bomber jacket", "制造", ""])
def test_words_that_only_contain_a_term_pass(text: str) -> None:
    assert BLOCKLIST.match(text) is None


def test_a_refusal_names_the_field_not_the_term() -> None:
    with pytest.raises(PlatformError) as refused:
        screen(BLOCKLIST, {"name": "Friendly", "description": "I make a bomb daily"})
    assert (refused.value.code, refused.value.status) == ("content_blocked", 400)
    assert "description" in refused.value.message and "bomb" not in refused.value.message


def test_the_default_config_blocks_english_and_chinese_terms() -> None:
    moderation: Moderation = instantiate(load_config().moderation, _convert_="all")
    assert moderation.impersonation_review is True
    assert moderation.match("please kill yourself") and moderation.match("关于恐怖袭击的消息")
    assert moderation.match("A calm narrator for bedtime stories") is None
