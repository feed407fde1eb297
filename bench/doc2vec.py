"""doc2vec training throughput on CPU, in frame pairs per second.

Trains the `sound_eval_doc2vec` model (the seed's sizes: 2048-sample frames every 0.1 s,
64 mel bands, towers 128 -> 32, batch 256) with real Lightning on 10 minutes of packed
synthetic audio, through the context-pair sampler, and reports pairs per second of the
last epoch. The reference, in the same run, is the same training fed one pair at a time
(the DataLoader's default per-item fetch and collate instead of the sampler's batched
`__getitems__`), which is how a per-pair Dataset would serve it.

    .venv/bin/python bench/doc2vec.py [--pairs 51200] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from audiorep.data.loading import already_batched
from audiorep.data.samplers import ContextPairDataset
from audiorep.features import LogMel
from audiorep.models.doc2vec import Doc2Vec

SR = 16000
N_FFT, HOP = 2048, 1600


class PerPair(torch.utils.data.Dataset):
    """The same pairs, served one at a time (the reference)."""

    def __init__(self, pairs: ContextPairDataset):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        return self.pairs[i]


class EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.perf_counter() - self._start)


def packed_audio(minutes: float, clip_seconds: float = 4.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 / clip_seconds)
    t = np.arange(int(clip_seconds * SR)) / SR
    f0 = rng.uniform(100, 1000, size=(n, 1))
    audio = (np.sin(2 * np.pi * f0 * t) * np.exp(-t * rng.uniform(0.2, 2, size=(n, 1)))).astype(
        np.float32
    )
    offsets = np.arange(n + 1, dtype=np.int64) * audio.shape[1]
    return audio.reshape(-1), offsets


def pairs_per_second(loader: DataLoader, num_clips: int, epochs: int, pairs: int) -> float:
    torch.manual_seed(0)
    feature = LogMel(
        SR, n_fft=N_FFT, hop_length=HOP, center=False, power=1.0, n_mels=64, fmin=80.0, fmax=7600.0
    )
    model = Doc2Vec([64, 1], feature, num_clips=num_clips)
    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=loader)
    return pairs / timer.seconds[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256 * 200, help="pairs per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    audio, offsets = packed_audio(10.0)
    num_clips = len(offsets) - 1
    pairs = ContextPairDataset(
        audio,
        offsets,
        np.arange(num_clips),
        N_FFT,
        HOP,
        window=3,
        negatives_per_positive=1,
        pairs_per_epoch=args.pairs,
        seed=0,
    )
    batched = DataLoader(
        pairs, batch_size=args.batch_size, shuffle=True, collate_fn=already_batched
    )
    per_pair = DataLoader(PerPair(pairs), batch_size=args.batch_size, shuffle=True)

    fast = pairs_per_second(batched, num_clips, args.epochs, args.pairs)
    slow = pairs_per_second(per_pair, num_clips, args.epochs, args.pairs)
    print(f"doc2vec training, batched context-pair sampler: {fast:,.0f} frame pairs/s")
    print(f"reference, one pair per fetch:                  {slow:,.0f} frame pairs/s")
    print(f"ratio: {fast / slow:.1f}x")
    print(
        json.dumps(
            {
                "bench": "doc2vec",
                "pairs_per_second": round(fast),
                "reference_pairs_per_second": round(slow),
                "ratio": round(fast / slow, 2),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
