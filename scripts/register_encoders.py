"""Evaluate every encoder on the generated evaluation voices, log each to MLflow as a new registered version
and point `champion` at the best real (pretrained or trained) version of each.

    python -m scripts.register_encoders       # fusion ge2e ge2e_robust ecapa_distilled ecapa encodec seeded
    python -m scripts.register_encoders ge2e --speakers 12 --utterances 4
"""

from __future__ import annotations

import argparse
from typing import Any

from omegaconf import OmegaConf

from bentos.core.config import load_config
from encoders import build_encoder
from encoders.benchmarking import clips_from_voice_set, registry_metrics
from encoders.ecapa import EncoderWeightsMissing
from encoders.registry import ChampionRefused, RegistrySettings, log_encoder, promote_best
from encoders.voices import DEFAULT_CACHE, make_voices


def register(names: list[str], speakers: int, utterances: int, overrides: list[str]) -> list[dict[str, Any]]:
    """Log + register each encoder; returns one summary row per encoder."""
    voice_set = make_voices(DEFAULT_CACHE, speakers=speakers, utterances=utterances)
    clips, labels = clips_from_voice_set(voice_set)
    rows = []
    for name in names:
        cfg = load_config([f"encoder={name}", *overrides])
        settings = RegistrySettings.from_config(cfg.get("registry"))
        encoder_cfg = OmegaConf.to_container(cfg.encoder, resolve=True)
        assert isinstance(encoder_cfg, dict)
        try:
            encoder = build_encoder(cfg.encoder)
        except EncoderWeightsMissing as exc:
            print(f"skip {name}: {exc}")
            continue
        metrics = registry_metrics(encoder, clips, labels)
        registered = log_encoder(
            encoder,
            {str(k): v for k, v in encoder_cfg.items()},
            metrics=metrics,
            extra_tags={
                "eval_set": f"generated {speakers} speakers × {utterances} utts (easier than real uploads)"
            },
            settings=settings,
        )
        try:
            champion = promote_best(name, settings=settings)
        except ChampionRefused:
            champion = None
        rows.append(
            {
                "encoder": name,
                "version": registered.version,
                "pretrained": encoder.pretrained,
                "champion": champion.version if champion else "-",
                **{k: metrics[k] for k in ("eer", "min_dcf", "ms_per_clip", "clips_per_s_batch8")},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "encoders",
        nargs="*",
        default=["fusion", "ge2e", "ge2e_robust", "ecapa_distilled", "ecapa", "encodec", "seeded"],
    )
    parser.add_argument("--speakers", type=int, default=12)
    parser.add_argument("--utterances", type=int, default=4)
    parser.add_argument(
        "--override", action="append", default=[], help="Hydra override, e.g. encoder.weights=…"
    )
    args = parser.parse_args()
    rows = register(args.encoders, args.speakers, args.utterances, args.override)
    print(f"{'encoder':10s} {'ver':>4s} {'pretrained':>10s} {'champion':>8s} {'EER %':>7s} {'minDCF':>7s} "
          f"{'ms/clip':>8s} {'clips/s@8':>9s}")  # fmt: skip
    for r in rows:
        print(f"{r['encoder']:10s} {r['version']:>4s} {r['pretrained']!s:>10s} {r['champion']:>8s} "
              f"{100 * r['eer']:7.2f} {r['min_dcf']:7.3f} {r['ms_per_clip']:8.1f} "
              f"{r['clips_per_s_batch8']:9.1f}")  # fmt: skip
    print("EERs are on generated speech: they rank encoders, they do not predict accuracy on real uploads.")


if __name__ == "__main__":
    main()
