"""Data and model from a config: one implementation for training, evaluation and embedding."""

from __future__ import annotations

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The `data` group's LightningDataModule."""
    return instantiate(cfg.data)


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """The `model` group's LightningModule, with the `feature` group's module inside it.

    The input shape comes from the feature applied to the data's clip length (or from the
    data's image shape when there is no feature), so the same model config fits any data.
    """
    feature = instantiate(cfg.feature) if cfg.get("feature") is not None else None
    if feature is not None:
        input_shape = feature.output_shape(datamodule.num_samples)
    else:
        input_shape = datamodule.image_shape
    # _convert_="all": plain lists and dicts in the hyperparameters, which weights_only
    # checkpoint loading accepts (OmegaConf containers it refuses).
    return instantiate(
        cfg.model,
        input_shape=list(input_shape),
        feature=feature,
        input_key=datamodule.input_key,
        _convert_="all",
    )
