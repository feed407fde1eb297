"""DataLoader construction shared by the data modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader, Dataset


def already_batched(batch: dict[str, Any]) -> dict[str, Any]:
    """collate_fn for datasets whose ``__getitems__`` returns a whole batch already."""
    return batch


def make_dataloader(
    dataset: Dataset | None,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    pin_memory: bool,
    collate_fn: Callable[[Any], Any] | None = None,
) -> DataLoader:
    """A DataLoader with workers kept alive between epochs; an error before `setup()`."""
    if dataset is None:
        raise RuntimeError("call setup() before asking for a dataloader")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        collate_fn=collate_fn,
    )
