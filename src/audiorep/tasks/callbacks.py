"""Callbacks that log what a VAE hears and sees during training."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

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
