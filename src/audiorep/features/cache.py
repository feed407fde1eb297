"""Memoised features for datasets whose clips never change between epochs."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FeatureCache:
    """Computes a deterministic feature once per clip and serves it from memory afterwards.

    Keys are the batch's `clip_index`. Only for data without augmentation, with the
    feature's parameters fixed during training (standardisation statistics are fitted
    before training starts). Not saved in checkpoints: it is rebuilt on the first epoch.
    """

    def __init__(self) -> None:
        self._store: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    def __call__(self, feature: nn.Module, audio: Tensor, clip_index: Tensor) -> Tensor:
        """audio (B, T), clip_index (B,) -> feature (B, ...), computing only unseen clips."""
        keys = clip_index.tolist()
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        if missing:
            with torch.no_grad():
                computed = feature(audio[missing])
            for row, i in enumerate(missing):
                self._store[keys[i]] = computed[row]
        return torch.stack([self._store[key] for key in keys])
