"""Checkpoints that survive kill -9 and describe themselves."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

METADATA_KEY = "audiorep"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, fsyncs, then renames.

    Lightning's own save goes through an fsspec transaction whose temporary file lives in
    the system temp dir, so the final move can be a non-atomic copy across filesystems.
    A rename within one directory is atomic: a kill leaves the old file or the new one.
    Loading uses weights_only, so a checkpoint cannot run code when it is read.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """torch.load with weights_only=True, and an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise RuntimeError(f"cannot read checkpoint {path}: {error}") from error


def library_versions() -> dict[str, str]:
    """Versions that the numbers in a run depend on: the metrics' libraries and the run's."""
    import hydra

    import audiorep
    from audiorep.evaluation.disentanglement import library_versions as metric_versions

    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses.
    return {
        **metric_versions(),
        "audiorep": audiorep.__version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "lightning": L.__version__,
        "hydra": hydra.__version__,
    }


class RunMetadata(L.Callback):
    """Puts the resolved config, library versions, data description and W&B run id into
    every checkpoint, so `evaluate.py` needs nothing but the checkpoint."""

    def __init__(
        self, config: dict[str, Any], data_description: dict[str, Any], wandb_run_id: str | None
    ):
        self.metadata = {
            "config": config,
            "versions": library_versions(),
            "data": data_description,
            "wandb_run_id": wandb_run_id,
        }

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[METADATA_KEY] = self.metadata


def run_metadata(checkpoint: dict[str, Any], path: str | os.PathLike) -> dict[str, Any]:
    """The `RunMetadata` of a loaded checkpoint; `path` names it in the error."""
    if METADATA_KEY not in checkpoint:
        raise ValueError(
            f"checkpoint {path} was not written by audiorep's train.py: it has no config"
        )
    return checkpoint[METADATA_KEY]


def checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `RunMetadata` stored in a checkpoint file."""
    return run_metadata(load_checkpoint(path), path)


def find_checkpoint(run_dir: str | os.PathLike, which: str = "best") -> Path:
    """The best (or last) checkpoint of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run directory {run_dir} does not exist: pass `run=<run dir>` as printed by train.py"
        )
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    if which == "best":
        best = sorted(checkpoints.glob("best-*.ckpt"))
        if best:
            return best[-1]
    elif which != "last":
        raise ValueError(f"which={which!r} must be 'best' or 'last'")
    if last.is_file():
        return last
    raise FileNotFoundError(
        f"run directory {run_dir} has no checkpoint in {checkpoints}: train it first "
        "(`python train.py ...` with the same overrides) or pass `ckpt=<path>`"
    )
