"""Command-line intake: validate, preprocess and embed one voice file, then print the report and hash.

python -m scripts.intake path/to/voice.mp3 [hydra overrides, e.g. encoder=seeded encoder.dim=512]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from encoders import AudioError, build_encoder, load_audio

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def intake(path: Path, overrides: list[str]) -> int:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    try:
        clip = load_audio(path, instantiate(cfg.audio))
    except AudioError as err:
        print(json.dumps({"error": {"code": err.code, "message": err.message}}, indent=2))
        return 2
    embedding = build_encoder(cfg.encoder).embed(clip)
    report = {
        **clip.report(),
        "encoder": embedding.encoder,
        "version": embedding.version,
        "pretrained": embedding.pretrained,
        "dim": embedding.dim,
        "vectorHead": [round(float(x), 6) for x in embedding.vector[:8]],
        "hash": embedding.hash,
    }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str]) -> int:
    if not argv or not Path(argv[0]).is_file():
        print(__doc__)
        return 2
    return intake(Path(argv[0]), argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
