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
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from audiorep.evaluation import disentanglement, protocol
from audiorep.evaluation.baselines import fit_linear_baseline
from audiorep.evaluation.clip_baselines import logmel_mean, mfcc_stats
from audiorep.evaluation.figures import (
    plot_latent_traversals,
    plot_mutual_information,
    plot_projections,
    plot_reconstructions,
)
from audiorep.evaluation.neighbours import embedding_space_analyses
from audiorep.evaluation.projections import project_2d
from audiorep.evaluation.protocol_figures import protocol_figures
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
    data_cfg: DictConfig | None = None,
    model_overrides: dict[str, Any] | None = None,
) -> tuple[DictConfig, L.LightningDataModule, L.LightningModule, dict[str, Any]]:
    """Config, data and trained model, rebuilt from a checkpoint alone.

    With ``data_cfg`` the returned data is that instead of the training data: the model
    is still built for its training data (input length, clip table), then scored on it.
    ``model_overrides`` replace model settings that do not change its weights (e.g.
    doc2vec's ``embedding``).
    """
    checkpoint = load_checkpoint(ckpt_path)
    metadata = run_metadata(checkpoint, ckpt_path)
    cfg = OmegaConf.create(metadata["config"])
    if model_overrides:
        cfg.model = OmegaConf.merge(cfg.model, model_overrides)
    training_data = build_datamodule(cfg)
    hyperparameters = checkpoint.get("hyper_parameters") or {}
    model = build_model(cfg, training_data, num_clips=hyperparameters.get("num_clips"))
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    # The clip length the model was built for (models with a fixed input length).
    metadata["num_samples"] = int(training_data.num_samples)
    if data_cfg is not None:
        with open_dict(cfg):
            cfg.data = data_cfg
        return cfg, instantiate(data_cfg), model, metadata
    return cfg, training_data, model, metadata


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


CLIP_BASELINES: dict[str, Callable[[list[np.ndarray], int], np.ndarray]] = {
    "mfcc_stats": mfcc_stats,
    "logmel_mean": logmel_mean,
}


def _fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """The centred ``num_samples`` of a clip, zero-padded when it is shorter."""
    if len(audio) >= num_samples:
        start = (len(audio) - num_samples) // 2
        return audio[start : start + num_samples]
    out = np.zeros(num_samples, dtype=np.float32)
    out[: len(audio)] = audio
    return out


def clip_embeddings(
    embed: Callable[[torch.Tensor], torch.Tensor],
    clips: list[np.ndarray],
    batch_size: int,
    num_samples: int | None = None,
) -> np.ndarray:
    """One vector per clip, (N, D), in the clips' order.

    Models with a fixed input length (``num_samples``: the VAE) see each clip's centre,
    zero-padded when short. Models that take any length see whole clips, batched by
    length: clips are sorted by length and each batch is cut to its shortest clip, which
    with sorted lengths trims only a few samples, instead of padding with silence that
    the model would embed.
    """
    if not clips:
        raise ValueError("no clips to embed")
    lengths = np.array([len(c) for c in clips])
    order = np.argsort(lengths, kind="stable")
    vectors: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        length = num_samples or int(lengths[chunk].min())
        audio = np.stack([_fit_length(clips[i], length) for i in chunk]).astype(np.float32)
        with torch.no_grad():
            out = embed(torch.from_numpy(audio)).detach().cpu().numpy()
        if vectors is None:
            vectors = np.zeros((len(clips), out.shape[1]), dtype=np.float32)
        vectors[chunk] = out
    return vectors


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in protocol.scalar_metrics(metrics).items()}


def write_embeddings(
    path: Path, embeddings: np.ndarray, data: Any, split_of_clip: np.ndarray
) -> Path:
    """``eval/embeddings.npz``, the viewer's input: embeddings, audio paths, metadata."""
    metadata = data.metadata
    columns = {
        f"meta:{name}": np.asarray(values).astype(str)
        for name, values in metadata.items()
        if name != "path"
    }
    columns["meta:split"] = split_of_clip
    np.savez(
        path,
        embeddings=embeddings.astype(np.float32),
        audio_path=np.array([str(data.source_path(i)) for i in range(data.num_clips)]),
        clip_id=np.asarray(metadata["path"]).astype(str),
        **columns,
    )
    return path


def _data_name(data_cfg: DictConfig) -> str:
    target = str(data_cfg.get("_target_", "data")).rsplit(".", 1)[-1]
    root = data_cfg.get("root")
    return f"{target}-{Path(str(root)).name}" if root else target


def print_protocol_summary(metrics: dict[str, Any], label_columns: list[str]) -> None:
    """The headline probe numbers of the model and each baseline, one line per column."""
    for column in label_columns:
        key = f"{column}/probe/logreg/macro_f1"
        parts = [f"model {metrics.get(key, float('nan')):.3f}"]
        for name, values in metrics.get("baselines", {}).items():
            parts.append(f"{name} {values.get(key, float('nan')):.3f}")
        log.info("%s logistic-regression macro-F1: %s", column, ", ".join(parts))


def clip_protocol(
    model: L.LightningModule,
    data: Any,
    eval_cfg: DictConfig,
    out_dir: Path,
    seed: int,
    num_samples: int | None,
) -> tuple[dict[str, Any], dict[str, str], np.ndarray]:
    """The evaluation protocol on a labelled clip collection: the model's embeddings and
    each baseline's, scored the same way; figures of the model's embeddings."""
    cfg = eval_cfg.protocol
    data.setup("test")
    clips = [np.asarray(data.clip_audio(i)) for i in range(data.num_clips)]
    labels = {c: np.asarray(data.metadata[c]) for c in data.label_columns}
    # Predefined folds are cross-validated (ESC-50, DCASE); folds that are a fixed
    # train/validation/test split (FMA) are used as that split.
    folds = data.folds if getattr(data, "folds_are_cross_validation", True) else None
    splits = None if folds is not None else {s: data.split_indices(s) for s in protocol.SPLITS}
    options = dict(probe_C=list(cfg.probe_C), knn_k=int(cfg.knn_k))

    log.info("embedding %d clips", len(clips))
    embeddings = clip_embeddings(model.embed, clips, int(cfg.batch_size), num_samples)
    metrics: dict[str, Any] = protocol.evaluate_embeddings(
        embeddings, labels, splits, folds, seed, **options
    )
    metrics["baselines"] = {}
    for name in cfg.baselines:
        if name not in CLIP_BASELINES:
            raise ValueError(
                f"eval.protocol.baselines has {name!r}; choose from {sorted(CLIP_BASELINES)}"
            )
        log.info("evaluation protocol on the %s baseline", name)
        baseline = CLIP_BASELINES[name](clips, data.sample_rate)
        metrics["baselines"][name] = protocol.evaluate_embeddings(
            baseline, labels, splits, folds, seed, **options
        )
    figures = {}
    if eval_cfg.figures.enabled:
        figures = {
            name: str(path)
            for name, path in protocol_figures(
                embeddings, labels, out_dir, seed, max_points=int(cfg.figure_points)
            ).items()
        }
    split_of_clip = np.full(data.num_clips, "", dtype=object)
    if folds is not None:
        split_of_clip[:] = [f"fold {f}" for f in folds]
    else:
        for split, index in splits.items():
            split_of_clip[index] = split
    write_embeddings(out_dir / "embeddings.npz", embeddings, data, split_of_clip.astype(str))
    return metrics, figures, embeddings


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
    data_cfg: DictConfig | None = None,
    viewer: bool = False,
    model_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a run's checkpoint; writes <run dir>/eval/metrics.json and figures.

    Data with ground-truth factors gets the disentanglement suite; labelled clip
    collections get the evaluation protocol (probes, k-NN, clustering, projections) for
    the model and the baselines, ``eval/embeddings.npz``, and with ``viewer`` the
    interactive viewer in ``eval/viewer/``. ``data_cfg`` scores the model on other data
    (results then go to ``eval/<data name>/``).
    """
    start = time.perf_counter()
    ckpt = Path(ckpt_path) if ckpt_path else find_checkpoint(run_dir, which)
    run_dir = Path(run_dir) if run_dir else ckpt.parent.parent
    out_dir = run_dir / "eval"
    if data_cfg is not None:
        out_dir = out_dir / _data_name(data_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, data, model, metadata = load_run(ckpt, data_cfg, model_overrides)
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

    figures: dict[str, str] = {}
    if eval_cfg.figures.enabled and hasattr(model, "decode_traversals"):
        figures.update(make_figures(model, data, codes, eval_cfg, out_dir, seed))

    if hasattr(data, "label_columns") and eval_cfg.protocol.enabled:
        fixed = None if getattr(model, "accepts_any_length", False) else metadata["num_samples"]
        scores, protocol_plots, embeddings = clip_protocol(
            model, data, eval_cfg, out_dir, seed, fixed
        )
        metrics.update(scores)
        figures.update(protocol_plots)
        space = eval_cfg.get("embedding_space")
        if space is not None and space.enabled:
            log.info("embedding-space analyses: k-NN consistency, k-means elbow, centroid walk")
            labels = {c: np.asarray(data.metadata[c]) for c in data.label_columns}
            options = {k: v for k, v in OmegaConf.to_container(space).items() if k != "enabled"}
            space_scores, space_plots = embedding_space_analyses(
                embeddings, labels, data.clip_audio, data.sample_rate, out_dir, seed, **options
            )
            metrics.update(space_scores)
            figures.update(space_plots)
        print_protocol_summary(scores, data.label_columns)
        if viewer:
            from audiorep.viewer import build_viewer

            index = build_viewer(
                out_dir / "embeddings.npz",
                out_dir / "viewer",
                max_audio=int(eval_cfg.viewer.max_audio),
                projections=list(eval_cfg.viewer.projections),
                seed=seed,
            )
            log.info("viewer: %s", index)
            metrics["viewer"] = str(index)
    elif viewer:
        raise ValueError(
            "viewer=true needs labelled clips (an audio data module); this run's data has none"
        )

    metrics["checkpoint"] = str(ckpt)
    metrics["model_overrides"] = dict(model_overrides or {})
    metrics["versions"] = {**metrics.get("versions", {}), **library_versions()}
    metrics["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    log.info("wrote %s", out_dir / "metrics.json")
    if log_to_wandb:
        _log_to_wandb(run_dir, cfg, metadata, metrics, figures)
    return metrics
