"""Data and model from a config: one implementation for training, evaluation and embedding."""

from __future__ import annotations

import inspect

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The `data` group's LightningDataModule."""
    return instantiate(cfg.data)


def build_model(
    cfg: DictConfig, datamodule: L.LightningDataModule, num_clips: int | None = None
) -> L.LightningModule:
    """The `model` group's LightningModule, with the `feature` group's module inside it.

    The input shape comes from the feature applied to the data's clip length (or from the
    data's image shape when there is no feature), so the same model config fits any data.
    ``num_clips`` sizes a per-clip table (doc2vec) when rebuilding a trained model: the
    table belongs to the training data, whatever data it is evaluated on.
    """
    feature = instantiate(cfg.feature) if cfg.get("feature") is not None else None
    if feature is not None:
        input_shape = feature.output_shape(datamodule.num_samples)
    else:
        input_shape = datamodule.image_shape
    extra = {}
    if "num_clips" in inspect.signature(get_class(cfg.model._target_)).parameters:
        if num_clips is None:
            # A fresh table has one row per clip of the data, known once it is preprocessed.
            datamodule.prepare_data()
            datamodule.setup("fit")
            num_clips = datamodule.num_clips
        extra["num_clips"] = num_clips
    # _convert_="all": plain lists and dicts in the hyperparameters, which weights_only
    # checkpoint loading accepts (OmegaConf containers it refuses).
    return instantiate(
        cfg.model,
        input_shape=list(input_shape),
        feature=feature,
        input_key=datamodule.input_key,
        _convert_="all",
        **extra,
    )
