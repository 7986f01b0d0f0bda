"""Generate test voices: N speakers × M utterances of 5–8 s (WAV + MP3) from Debian's offline voices.

    python -m scripts.make_voices --out .cache/voices --speakers 12 --utterances 6

The generation itself is `encoders.voices.make_voices`; this prints the clips it made (or found cached).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from encoders.voices import DEFAULT_CACHE, make_voices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--speakers", type=int, default=12)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    voice_set = make_voices(args.out, args.speakers, args.utterances, args.seed)
    for clip in voice_set.clips:
        print(f"{clip.speaker:32s} {clip.utterance}  {clip.duration:5.2f}s  {clip.mp3_path}")


if __name__ == "__main__":
    main()
