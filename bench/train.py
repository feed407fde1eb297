"""Training throughput of the default experiment on CPU, and where step time goes.

Trains the default `atiam_beta_vae` config with real Lightning for `--epochs` epochs and
measures the last one (the first fills the feature cache): optimizer steps per second,
and the share of step time spent waiting for the data loader or computing features.
The reference, in the same run, is the same model with the feature recomputed every
step (`model.cache_features=false`). Goal: data + features at most 25% of step time.

    .venv/bin/python bench/train.py [--epochs 2] [--batches 0 = all] [hydra overrides ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import audiorep.tasks  # noqa: F401 - registers the run_name resolver
from audiorep.tasks.build import build_datamodule, build_model
from audiorep.tasks.train import fit_feature_statistics

ROOT = Path(__file__).resolve().parents[1]


class StepTimer(L.Callback):
    """Per-epoch totals of step time, data-loader wait and feature time."""

    def __init__(self, feature: torch.nn.Module) -> None:
        self.epochs: list[dict[str, float]] = []
        self._feature_start = 0.0
        feature.register_forward_pre_hook(self._feature_pre)
        feature.register_forward_hook(self._feature_post)

    def _feature_pre(self, *_):
        self._feature_start = time.perf_counter()

    def _feature_post(self, *_):
        if self.epochs:
            self.epochs[-1]["feature"] += time.perf_counter() - self._feature_start

    def on_train_epoch_start(self, trainer, pl_module):
        now = time.perf_counter()
        self.epochs.append(
            {"start": now, "last_end": now, "data_wait": 0.0, "feature": 0.0, "steps": 0}
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        epoch = self.epochs[-1]
        epoch["data_wait"] += time.perf_counter() - epoch["last_end"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        epoch = self.epochs[-1]
        epoch["last_end"] = time.perf_counter()
        epoch["steps"] += 1


def measure(
    cache_features: bool, epochs: int, batches: int, overrides: list[str]
) -> dict[str, float]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"model.cache_features={cache_features}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.data_dir = os.environ.get("AUDIOREP_DATA", str(ROOT / "data"))
    L.seed_everything(0)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    fit_feature_statistics(model, datamodule)
    timer = StepTimer(model.feature)
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=batches or 1.0,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, datamodule=datamodule)
    last = timer.epochs[-1]
    total = last["last_end"] - last["start"]
    return {
        "steps": last["steps"],
        "steps_per_second": last["steps"] / total,
        "data_wait_share": last["data_wait"] / total,
        "feature_share": last["feature"] / total,
        "data_and_feature_share": (last["data_wait"] + last["feature"]) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batches", type=int, default=0, help="train batches per epoch (0 = all)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.num_workers=1")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    reference = measure(False, args.epochs, args.batches, args.overrides)
    print(
        f"reference (feature every step): {reference['steps_per_second']:.1f} steps/s, "
        f"data {reference['data_wait_share']:.1%}, features {reference['feature_share']:.1%}"
    )
    cached = measure(True, args.epochs, args.batches, args.overrides)
    print(
        f"default (feature cache):        {cached['steps_per_second']:.1f} steps/s, "
        f"data {cached['data_wait_share']:.1%}, features {cached['feature_share']:.1%}"
    )
    speedup = cached["steps_per_second"] / reference["steps_per_second"]
    print(f"speed-up over the reference: {speedup:.2f}x")
    result = {
        "steps_per_second": round(cached["steps_per_second"], 2),
        "data_and_feature_share": round(cached["data_and_feature_share"], 4),
        "reference_steps_per_second": round(reference["steps_per_second"], 2),
        "reference_data_and_feature_share": round(reference["data_and_feature_share"], 4),
        "speedup": round(speedup, 2),
        "goal_share_at_most_25pct": cached["data_and_feature_share"] <= 0.25,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
