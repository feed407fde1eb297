"""The training task behind `train.py`: build, resume if the run exists, fit, evaluate."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from audiorep.tasks.build import build_datamodule, build_model
from audiorep.tasks.checkpointing import (
    AtomicCheckpointIO,
    RunMetadata,
    checkpoint_metadata,
    load_checkpoint,
)

log = logging.getLogger(__name__)

DONE_FILE = "train_done.json"


def resolve_resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """`ckpt_path` if given; else the run's last.ckpt when `resume` is on; else nothing."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
        return path
    last = run_dir / "checkpoints" / "last.ckpt"
    if cfg.get("resume", True) and last.is_file():
        return last
    return None


def instantiate_loggers(cfg: DictConfig, wandb_run_id: str | None) -> list[Logger]:
    """The `logger` group's loggers; W&B keeps its run id across resumes and groups sweeps."""
    loggers: list[Logger] = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        if logger_cfg is None:
            continue
        if logger_cfg.get("_target_", "").endswith("WandbLogger"):
            os.environ.setdefault("WANDB_SILENT", "true")
            group = logger_cfg.get("group") or os.environ.get("AUDIOREP_SWEEP_GROUP")
            loggers.append(instantiate(logger_cfg, id=wandb_run_id, group=group, resume="allow"))
        else:
            loggers.append(instantiate(logger_cfg))
        log.info("logger %s: %s", name, type(loggers[-1]).__name__)
    return loggers


def instantiate_callbacks(cfg: DictConfig, has_logger: bool) -> list[L.Callback]:
    """The `callbacks` group; the LR monitor only when there is a logger to send it to."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    return [c for c in callbacks if has_logger or not isinstance(c, LearningRateMonitor)]


def fit_feature_statistics(
    model: L.LightningModule, datamodule: L.LightningDataModule, max_batches: int = 200
) -> None:
    """Standardisation statistics of the feature, from the training set only."""
    feature = getattr(model, "feature", None)
    if feature is None or not getattr(feature, "needs_statistics", False):
        return
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()

    def audio_batches():
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            if datamodule.input_key not in batch:
                raise ValueError(
                    f"feature.normalization={feature.normalization} needs whole clips, but "
                    f"data.sampler serves {sorted(batch)}: use feature.normalization=none "
                    "(doc2vec and Tile2Vec normalise their input inside the model)"
                )
            yield batch[datamodule.input_key]

    log.info("fitting feature statistics on the training set")
    feature.fit_statistics(audio_batches())


def read_optimized_metric(run_dir: Path, name: str | None) -> float | None:
    if not name:
        return None
    metrics_file = run_dir / "eval" / "metrics.json"
    if not metrics_file.is_file():
        raise FileNotFoundError(
            f"optimized_metric={name} needs {metrics_file}: keep `evaluate=true` in sweeps"
        )
    metrics = json.loads(metrics_file.read_text())
    if name not in metrics:
        raise KeyError(
            f"optimized_metric={name} is not in {metrics_file}; it has {sorted(metrics)}"
        )
    return float(metrics[name])


def train(cfg: DictConfig) -> float | None:
    """Train the configured model in its run directory, resuming it if it exists.

    Returns `optimized_metric` from the evaluation, for sweepers.
    """
    run_dir = Path(cfg.paths.output_dir)
    done_file = run_dir / DONE_FILE
    is_debug = bool(cfg.trainer.get("fast_dev_run"))
    if (
        done_file.is_file()
        and cfg.get("resume", True)
        and not cfg.get("ckpt_path")
        and not is_debug
    ):
        log.info(
            "run %s already finished (%s); not training again. resume=false retrains.",
            run_dir,
            done_file,
        )
        if cfg.get("evaluate") and not (run_dir / "eval" / "metrics.json").is_file():
            _evaluate(cfg, run_dir)
        return read_optimized_metric(run_dir, cfg.get("optimized_metric"))

    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)

    ckpt_path = resolve_resume_checkpoint(cfg, run_dir)
    if ckpt_path is not None:
        wandb_run_id = checkpoint_metadata(ckpt_path).get("wandb_run_id")
        log.info("resuming from %s", ckpt_path)
    else:
        # W&B run ids are short lowercase alphanumerics; one per fresh run.
        wandb_run_id = uuid.uuid4().hex[:8]
        fit_feature_statistics(model, datamodule)

    loggers = instantiate_loggers(cfg, wandb_run_id)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    callbacks = instantiate_callbacks(cfg, has_logger=bool(loggers))
    callbacks.append(RunMetadata(resolved, datamodule.describe(), wandb_run_id))
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=loggers or False, callbacks=callbacks, plugins=[AtomicCheckpointIO()]
    )
    for logger in loggers:
        logger.log_hyperparams(resolved)

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    seconds = time.perf_counter() - start
    if is_debug or not trainer.is_global_zero:
        return None
    if trainer.interrupted:
        log.warning("training was interrupted; rerun the same command to resume from last.ckpt")
        return None

    # Read the progress from last.ckpt: with ddp_spawn this process's trainer never saw it.
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    done_file.write_text(
        json.dumps(
            {
                "global_step": int(last["global_step"]),
                "epochs": int(last["epoch"]) + 1,
                "seconds_this_session": round(seconds, 2),
                "resumed_from": str(ckpt_path) if ckpt_path else None,
            },
            indent=2,
        )
    )
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
    log.info("trained %s in %.1f s (this session)", run_dir, seconds)
    if cfg.get("evaluate"):
        _evaluate(cfg, run_dir)
    return read_optimized_metric(run_dir, cfg.get("optimized_metric"))


def _evaluate(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    from audiorep.tasks.evaluate import evaluate_run

    log_to_wandb = cfg.get("logger") is not None and "wandb" in cfg.logger
    metrics = evaluate_run(run_dir, cfg.eval, seed=cfg.seed, log_to_wandb=log_to_wandb)
    headline = {
        k: round(v, 3)
        for k, v in metrics.items()
        if isinstance(v, float) and k != "evaluation_seconds"
    }
    print(f"\nrun directory: {run_dir}\nmetrics:       {run_dir / 'eval' / 'metrics.json'}")
    print(f"figures:       {run_dir / 'eval'}/*.png, audio in {run_dir / 'eval' / 'audio'}")
    if headline:
        print(f"scores:        {headline}")
    return metrics
