"""Callbacks: what a VAE hears and sees during training; doc2vec's seed outputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from audiorep.data.cache import atomic_path, atomic_write_text
from audiorep.evaluation.figures import plot_latent_traversals, plot_reconstructions


class VAEMediaLogger(L.Callback):
    """Every `every_n_epochs`, logs reconstructions (images and Griffin-Lim audio) and latent
    traversals of the first validation examples to W&B. Other loggers get nothing."""

    def __init__(
        self,
        every_n_epochs: int = 5,
        num_examples: int = 4,
        traversal_steps: int = 7,
        griffin_lim_iters: int = 16,
    ):
        self.every_n_epochs = every_n_epochs
        self.num_examples = num_examples
        self.traversal_steps = traversal_steps
        self.griffin_lim_iters = griffin_lim_iters

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if (
            not loggers
            or not hasattr(pl_module, "decode_traversals")
            or trainer.sanity_checking
            or (trainer.current_epoch + 1) % self.every_n_epochs
        ):
            return
        import wandb

        batch = next(iter(trainer.datamodule.val_dataloader()))
        inputs = batch[pl_module.input_key][: self.num_examples].to(pl_module.device)
        with torch.no_grad():
            x = pl_module.features(inputs)
            decoded = pl_module.decode(pl_module.encode(x)[0])
            values = np.linspace(-2.5, 2.5, self.traversal_steps)
            traversals = pl_module.decode_traversals(values)
        with tempfile.TemporaryDirectory() as tmp:
            recon_png = plot_reconstructions(
                x.cpu().numpy(), decoded.cpu().numpy(), Path(tmp) / "r.png"
            )
            maps = traversals.cpu().numpy()
            trav_png = plot_latent_traversals(maps, values, Path(tmp) / "t.png")
            media = {
                "media/reconstructions": wandb.Image(str(recon_png)),
                "media/latent_traversals": wandb.Image(str(trav_png)),
            }
            feature = pl_module.feature
            if feature is not None and hasattr(feature, "invert"):
                with torch.no_grad():
                    audio = feature.invert(decoded, n_iter=self.griffin_lim_iters).cpu().numpy()
                rate = int(getattr(trainer.datamodule, "sample_rate", 16000))
                media["media/decoded_audio"] = [
                    wandb.Audio(a / (np.abs(a).max() or 1.0), sample_rate=rate) for a in audio
                ]
            for logger in loggers:
                logger.experiment.log({**media, "trainer/global_step": trainer.global_step})


class ClipVectorWriter(L.Callback):
    """sound-eval's run outputs, beside the checkpoints: the trained clip vectors
    (``clip_vectors.npy``, one row per training clip), the clip list in the same order
    (``clip_list.txt``, paths relative to the data root) and the cost per step
    (``cost_per_step.csv``).

    Vectors are rewritten atomically at every epoch end. On resume, cost rows past the
    resumed step are dropped so the CSV has each step once.
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int = 10):
        self.dirpath = Path(dirpath)
        self.every_n_steps = int(every_n_steps)

    @property
    def cost_file(self) -> Path:
        return self.dirpath / "cost_per_step.csv"

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        kept = ["step,loss\n"]
        if self.cost_file.is_file():
            for line in self.cost_file.read_text().splitlines()[1:]:
                step = line.split(",", 1)[0]
                if step.isdigit() and int(step) < trainer.global_step:
                    kept.append(line + "\n")
        atomic_write_text(self.cost_file, "".join(kept))

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps or outputs is None:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        with open(self.cost_file, "a", encoding="utf-8") as f:
            f.write(f"{step},{float(loss):.6f}\n")

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        train_clips = datamodule.split_indices("train")
        vectors = pl_module.clip_vectors.weight.detach().cpu().numpy()[train_clips]
        with atomic_path(self.dirpath / "clip_vectors.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, vectors.astype(np.float32))
        paths = np.asarray(datamodule.metadata["path"])[train_clips]
        atomic_write_text(self.dirpath / "clip_list.txt", "".join(f"{p}\n" for p in paths))
