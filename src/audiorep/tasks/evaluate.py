"""The evaluation task behind `evaluate.py`: rebuild a run from its checkpoint and score it."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from audiorep.evaluation import disentanglement
from audiorep.evaluation.baselines import fit_linear_baseline
from audiorep.evaluation.figures import (
    plot_latent_traversals,
    plot_mutual_information,
    plot_projections,
    plot_reconstructions,
)
from audiorep.evaluation.projections import project_2d
from audiorep.tasks.build import build_datamodule, build_model
from audiorep.tasks.checkpointing import (
    find_checkpoint,
    library_versions,
    load_checkpoint,
    run_metadata,
)

log = logging.getLogger(__name__)

GROUND_TRUTH_INTERFACE = (
    "factor_names",
    "factor_sizes",
    "sample_factors",
    "observations_from_factors",
)


def load_run(
    ckpt_path: str | Path,
) -> tuple[DictConfig, L.LightningDataModule, L.LightningModule, dict[str, Any]]:
    """Config, data and trained model, rebuilt from a checkpoint alone."""
    checkpoint = load_checkpoint(ckpt_path)
    metadata = run_metadata(checkpoint, ckpt_path)
    cfg = OmegaConf.create(metadata["config"])
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return cfg, datamodule, model, metadata


def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int
) -> Callable[[np.ndarray], np.ndarray]:
    """numpy in, numpy out, in batches, without gradients."""

    @torch.no_grad()
    def apply(x: np.ndarray) -> np.ndarray:
        outputs = [
            fn(torch.as_tensor(x[i : i + batch_size])).cpu().numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(outputs)

    return apply


class GridLookup:
    """A finite ground-truth dataset whose observations are their own flat grid indices.

    Representations of every grid point are computed once; the metrics then sample
    factors as usual and `represent` looks their codes up. Same definitions, and each
    sound is embedded once instead of once per metric sample.
    """

    def __init__(self, data: Any):
        self.factor_names = list(data.factor_names)
        self.factor_sizes = list(data.factor_sizes)
        self._sample_factors = data.sample_factors

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample_factors(n, rng)

    def observations_from_factors(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors).T), self.factor_sizes)

    def all_factors(self) -> np.ndarray:
        """(grid size, F) factor indices in flat-index order."""
        return np.stack(
            np.unravel_index(np.arange(math.prod(self.factor_sizes)), self.factor_sizes), axis=1
        )


def _all_grid_observations(data: Any, grid: GridLookup, chunk: int) -> Any:
    factors = grid.all_factors()
    for i in range(0, len(factors), chunk):
        yield data.observations_from_factors(factors[i : i + chunk])


def _codes_for_grid(
    data: Any, grid: GridLookup, represent: Callable[[np.ndarray], np.ndarray], chunk: int = 1024
) -> np.ndarray:
    return np.concatenate([represent(obs) for obs in _all_grid_observations(data, grid, chunk)])


def disentanglement_metrics(
    data: Any, represent: Callable[[np.ndarray], np.ndarray], eval_cfg: DictConfig, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The disentanglement suite on `represent`; also returns the codes of the whole grid."""
    grid = GridLookup(data)
    codes = _codes_for_grid(data, grid, represent)
    metrics = disentanglement.evaluate(
        grid,
        lambda index: codes[np.asarray(index).reshape(-1)],
        seed=seed,
        num_train=int(eval_cfg.num_train),
        num_test=int(eval_cfg.num_test),
        batch_size=int(eval_cfg.batch_size),
    )
    return metrics, codes


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    from audiorep.audio.io import write_wav

    peak = float(np.abs(audio).max()) or 1.0
    write_wav(path, (audio / peak * 0.9).astype(np.float32), sample_rate)


def make_figures(
    model: L.LightningModule,
    data: Any,
    codes: np.ndarray | None,
    eval_cfg: DictConfig,
    out_dir: Path,
    seed: int,
) -> dict[str, str]:
    """Traversals, reconstructions, projections and the MI heat map, as PNG (and WAV)."""
    figures: dict[str, str] = {}
    cfg = eval_cfg.figures
    rng = np.random.default_rng(seed)
    feature = model.feature
    can_listen = feature is not None and hasattr(feature, "invert")
    sample_rate = int(getattr(data, "sample_rate", 16000))

    # Latent traversals: every dimension swept around the prior mean, as the seed did.
    values = np.linspace(-cfg.traversal_range, cfg.traversal_range, int(cfg.traversal_steps))
    latent = model.latent_dim
    traversals = model.decode_traversals(values)
    decoded = traversals.flatten(0, 1)
    maps = traversals.numpy()
    figures["latent_traversals"] = str(
        plot_latent_traversals(maps, values, out_dir / "latent_traversals.png")
    )
    if can_listen:
        with torch.no_grad():
            audio = feature.invert(decoded, n_iter=int(cfg.griffin_lim_iters)).numpy()
        audio = audio.reshape(latent, -1)
        for i in range(latent):
            _write_wav(out_dir / "audio" / f"traversal_z{i}.wav", audio[i], sample_rate)

    # Reconstructions of held-out examples.
    if hasattr(data, "test_dataloader"):
        data.setup("test")
        batch = next(iter(data.test_dataloader()))
        inputs = batch[model.input_key][: int(cfg.num_reconstructions)]
        with torch.no_grad():
            x = model.features(inputs)
            reconstruction = model.decode(model.encode(x)[0])
        figures["reconstructions"] = str(
            plot_reconstructions(x.numpy(), reconstruction.numpy(), out_dir / "reconstructions.png")
        )
        if can_listen:
            with torch.no_grad():
                decoded_audio = feature.invert(
                    reconstruction, n_iter=int(cfg.griffin_lim_iters)
                ).numpy()
            for j in range(len(inputs)):
                _write_wav(out_dir / "audio" / f"input_{j}.wav", inputs[j].numpy(), sample_rate)
                _write_wav(out_dir / "audio" / f"decoded_{j}.wav", decoded_audio[j], sample_rate)

    if codes is not None:
        grid = GridLookup(data)
        factors = grid.all_factors()
        chosen = rng.choice(
            len(codes), size=min(int(cfg.projection_points), len(codes)), replace=False
        )
        points = {method: project_2d(codes[chosen], method, seed) for method in ("umap", "tsne")}
        figures["projections"] = str(
            plot_projections(
                points, factors[chosen], grid.factor_names, out_dir / "projections.png"
            )
        )
        sample = rng.choice(len(codes), size=min(10000, len(codes)), replace=False)
        mi = disentanglement.mutual_information_matrix(codes[sample], factors[sample])
        figures["mutual_information"] = str(
            plot_mutual_information(mi, grid.factor_names, out_dir / "mutual_information.png")
        )
    return figures


def _log_to_wandb(
    run_dir: Path,
    cfg: DictConfig,
    metadata: dict[str, Any],
    metrics: dict[str, Any],
    figures: dict[str, str],
) -> None:
    """Add the evaluation to the training run's W&B run (offline unless the run was online)."""
    import wandb

    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    run_id = metadata.get("wandb_run_id")
    if wandb_cfg is None or run_id is None:
        return
    run = wandb.init(
        project=wandb_cfg.get("project", "audiorep"),
        id=run_id,
        resume="allow",
        dir=str(run_dir),
        mode="offline" if wandb_cfg.get("offline", True) else "online",
        settings=wandb.Settings(silent=True),
    )
    flat = {f"eval/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}
    for name, values in metrics.get("baselines", {}).items():
        flat.update(
            {
                f"eval/baselines/{name}/{k}": v
                for k, v in values.items()
                if isinstance(v, int | float)
            }
        )
    flat.update({f"eval/{name}": wandb.Image(path) for name, path in figures.items()})
    run.log(flat)
    for key, value in flat.items():
        if not isinstance(value, wandb.Image):
            run.summary[key] = value
    run.finish()


def evaluate_run(
    run_dir: str | Path | None,
    eval_cfg: DictConfig,
    seed: int = 0,
    log_to_wandb: bool = True,
    ckpt_path: str | Path | None = None,
    which: str = "best",
) -> dict[str, Any]:
    """Score a run's checkpoint; writes <run dir>/eval/metrics.json and figures."""
    start = time.perf_counter()
    ckpt = Path(ckpt_path) if ckpt_path else find_checkpoint(run_dir, which)
    run_dir = Path(run_dir) if run_dir else ckpt.parent.parent
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, data, model, metadata = load_run(ckpt)
    data.prepare_data()
    represent = _batched(model.embed, int(eval_cfg.disentanglement.batch_size))

    metrics: dict[str, Any] = {}
    codes = None
    has_ground_truth = all(hasattr(data, name) for name in GROUND_TRUTH_INTERFACE)
    if has_ground_truth and eval_cfg.disentanglement.enabled:
        log.info("disentanglement metrics of the model")
        scores, codes = disentanglement_metrics(data, represent, eval_cfg.disentanglement, seed)
        metrics.update(scores)
        metrics["baselines"] = {}
        features = _batched(model.features, int(eval_cfg.disentanglement.batch_size))
        grid = GridLookup(data)
        fit_index = np.random.default_rng(seed).choice(
            math.prod(grid.factor_sizes),
            size=min(5000, math.prod(grid.factor_sizes)),
            replace=False,
        )
        fit_features = features(
            data.observations_from_factors(grid.all_factors()[np.sort(fit_index)])
        )
        for method in eval_cfg.baselines:
            log.info("disentanglement metrics of the %s baseline", method)
            baseline = fit_linear_baseline(method, fit_features, model.latent_dim, seed)
            baseline_scores, _ = disentanglement_metrics(
                data,
                lambda obs, fitted=baseline: fitted(features(obs)),
                eval_cfg.disentanglement,
                seed,
            )
            metrics["baselines"][method] = {
                k: v for k, v in baseline_scores.items() if k not in ("versions", "seconds")
            }

    figures = (
        make_figures(model, data, codes, eval_cfg, out_dir, seed)
        if eval_cfg.figures.enabled
        else {}
    )
    metrics["checkpoint"] = str(ckpt)
    metrics["versions"] = {**metrics.get("versions", {}), **library_versions()}
    metrics["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    log.info("wrote %s", out_dir / "metrics.json")
    if log_to_wandb:
        _log_to_wandb(run_dir, cfg, metadata, metrics, figures)
    return metrics
