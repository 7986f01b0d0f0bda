"""Shared fixtures: generated test voices (cached under .cache/voices, never committed)."""

from __future__ import annotations

import os

import pytest
import torch

from scripts.make_voices import DEFAULT_CACHE, VoiceSet, make_voices

# Two cores: keep each test process from oversubscribing them.
torch.set_num_threads(int(os.environ.get("VOXPERSONA_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def voice_set() -> VoiceSet:
    """6 speakers × 3 utterances of 5–8 s generated speech (WAV + MP3)."""
    return make_voices(DEFAULT_CACHE, speakers=6, utterances=3)
