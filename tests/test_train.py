"""End-to-end: real configs, real Lightning training, real checkpoints, in tmp_path."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# Fast settings for runs in a subprocess: the small grid, CSV logs, no media.
SMALL_RUN = [
    "data=toy_synth_small",
    "logger=csv",
    "callbacks.media=null",
    "callbacks.progress_bar=null",
]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_under_fast_dev_run(compose_train, experiment):
    from omegaconf import OmegaConf

    from audiorep.tasks.train import train

    cfg = compose_train(f"experiment={experiment}", "debug=default")
    if "root" in cfg.data.keys() and OmegaConf.is_missing(cfg.data, "root"):
        # Its data is read from a user's path (DCASE): here it runs on generated notes.
        cfg = compose_train(
            f"experiment={experiment}", "debug=default", "data=soundfont_notes_small"
        )
    assert cfg.experiment_name == experiment
    train(cfg)


@pytest.mark.parametrize("model", ["beta_vae", "beta_tcvae", "annealed_vae", "factor_vae"])
@pytest.mark.parametrize("architecture", ["mlp", "conv", "gru"])
def test_every_model_and_architecture_trains_a_step(compose_train, model, architecture):
    from audiorep.tasks.train import train

    # The coarse default CQT has 2 frames per 0.25 s test clip: too few for 4 stride-2 layers.
    conv = ["feature=cqt"] if architecture == "conv" else []
    train(
        compose_train(
            f"model={model}", f"model.architecture={architecture}", *conv, "debug=default"
        )
    )


def test_another_feature_replaces_the_experiments_feature(compose_train):
    from audiorep.tasks.train import train

    cfg = compose_train("feature=logmel", "model.architecture=conv", "debug=default")
    assert cfg.feature._target_.endswith("LogMel") and "n_bins" not in cfg.feature
    train(cfg)


def test_train_then_evaluate_writes_metrics_and_figures(compose_train):
    from audiorep.tasks.train import train

    cfg = compose_train(
        "logger=csv",
        "trainer.max_epochs=2",
        "eval.disentanglement.num_train=300",
        "eval.disentanglement.num_test=200",
        "eval.figures.projection_points=60",
        "callbacks.progress_bar=null",
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert (run_dir / "metrics.csv").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    from audiorep.evaluation.disentanglement import SCORE_KEYS

    for key in SCORE_KEYS:
        assert 0.0 <= metrics[key] <= 1.0 + 1e-6, key
        for baseline in ("pca", "ica"):
            assert 0.0 <= metrics["baselines"][baseline][key] <= 1.0 + 1e-6, (baseline, key)
    assert "scikit-learn" in metrics["versions"] and "torch" in metrics["versions"]
    for figure in ["latent_traversals", "reconstructions", "projections", "mutual_information"]:
        assert (run_dir / "eval" / f"{figure}.png").stat().st_size > 1000
    assert any((run_dir / "eval" / "audio").glob("traversal_z*.wav"))


def test_evaluate_without_checkpoint_says_what_to_do(tmp_path):
    from audiorep.tasks.checkpointing import find_checkpoint

    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        find_checkpoint(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_checkpoint(tmp_path / "missing")


def _train_command(tmp_path: Path, *overrides: str, multirun: bool = False) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *(["-m"] if multirun else []),
        *SMALL_RUN,
        f"paths.log_dir={tmp_path / 'outputs'}",
        f"paths.data_dir={tmp_path / 'data'}",
        *overrides,
    ]


def _run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _run_dirs(tmp_path: Path) -> list[Path]:
    return sorted(
        p.parent
        for p in (tmp_path / "outputs").rglob(".hydra")
        if (p.parent / "checkpoints").exists()
    )


def test_kill_9_then_same_command_resumes_and_ends_at_the_same_step(tmp_path):
    overrides = ["trainer.max_epochs=12", "evaluate=false", "data.batch_size=8"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(
        _train_command(tmp_path, *overrides),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    last = None
    while time.time() < deadline and process.poll() is None:
        found = list((tmp_path / "outputs").rglob("checkpoints/last.ckpt"))
        if found:
            last = found[0]
            time.sleep(0.5)  # let it train further, mid-way through later epochs
            break
        time.sleep(0.05)
    assert last is not None and process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    run_dir = last.parent.parent
    assert not (run_dir / "train_done.json").exists()

    _run(_train_command(tmp_path, *overrides))
    resumed = json.loads((run_dir / "train_done.json").read_text())
    assert resumed["resumed_from"] is not None

    # The same run, uninterrupted, elsewhere: same number of optimizer steps.
    fresh_root = tmp_path / "fresh"
    _run(_train_command(fresh_root, *overrides))
    (fresh_dir,) = _run_dirs(fresh_root)
    fresh = json.loads((fresh_dir / "train_done.json").read_text())
    assert resumed["global_step"] == fresh["global_step"] > 0, (resumed, fresh)
    assert resumed["epochs"] == fresh["epochs"] == 12


def test_rerun_sweep_trains_only_unfinished_runs(tmp_path):
    overrides = ["trainer.max_epochs=1", "evaluate=false"]
    _run(_train_command(tmp_path, *overrides, "model.beta=1", multirun=True))
    (first,) = _run_dirs(tmp_path)
    first_mtime = (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns

    # The "interrupted" sweep is the same sweep with one run still to do.
    result = _run(_train_command(tmp_path, *overrides, "model.beta=1,4", multirun=True))
    dirs = _run_dirs(tmp_path)
    assert len(dirs) == 2 and first in dirs
    assert (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns == first_mtime
    assert "already finished" in result.stdout + result.stderr
    assert all((d / "train_done.json").is_file() for d in dirs)


def test_ddp_with_two_cpu_processes(tmp_path):
    _run(_train_command(tmp_path, "trainer=ddp_cpu", "trainer.max_epochs=2", "evaluate=false"))
    (run_dir,) = _run_dirs(tmp_path)
    done = json.loads((run_dir / "train_done.json").read_text())
    # Each of the 2 processes sees half of the training split per epoch.
    from audiorep.data.clips import split_sizes

    n_train = split_sizes(108, [0.8, 0.1, 0.1])[0]
    steps_per_epoch = math.ceil(math.ceil(n_train / 2) / 16)
    assert done["epochs"] == 2 and done["global_step"] == 2 * steps_per_epoch


def test_unknown_group_option_lists_the_choices(compose_train):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as error:
        compose_train("model=not_a_model")
    assert "beta_tcvae" in str(error.value) and "factor_vae" in str(error.value)


@pytest.mark.parametrize("override", ["hparams_search=optuna", "launcher=joblib", "launcher=slurm"])
def test_sweep_and_launcher_configs_compose(override):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import audiorep.tasks  # noqa: F401

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[override], return_hydra_config=True)
    if override.startswith("hparams_search"):
        assert cfg.optimized_metric == "mig"
        assert set(cfg.hydra.sweeper.params) == {"model.beta", "model.latent_dim"}
    else:
        assert cfg.hydra.launcher._target_.split(".")[-1] in {"JoblibLauncher", "SlurmLauncher"}


def test_wandb_offline_run_is_resumed_by_evaluation(compose_train, monkeypatch):
    from audiorep.tasks.checkpointing import checkpoint_metadata
    from audiorep.tasks.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_train(
        "trainer.max_epochs=1",
        "eval.disentanglement.num_train=200",
        "eval.disentanglement.num_test=100",
        "eval.baselines=[]",
        "eval.figures.enabled=false",
        "callbacks.progress_bar=null",
        "callbacks.media.every_n_epochs=1",  # reconstructions, audio, traversals to W&B
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_id = checkpoint_metadata(run_dir / "checkpoints" / "last.ckpt")["wandb_run_id"]
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    # Training and evaluation each wrote an offline segment of the same W&B run.
    assert len(runs) >= 2 and all(r.name.endswith(run_id) for r in runs)
    media = {p.name.split("_1_")[0] for p in (run_dir / "wandb").rglob("media/images/media/*.png")}
    assert {"latent_traversals", "reconstructions"} <= media
