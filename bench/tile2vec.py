"""Tile2Vec training throughput on CPU: triplets per second for the conv2d and CRNN encoders.

Each training step draws a batch from the triplet sampler, computes the seed's log-mel
inside the model (16 kHz, 128 bands, 10 ms hop) for the anchor, neighbour and distant
tiles, runs the encoder, the triplet loss, the backward pass and an Adam step, as
``experiment=deep_embedded_music`` does (1 s tiles, embedding 256, batch 64). The
reference, measured in the same run, is the ``dense`` encoder (one Linear layer): the
cost of everything but the encoder. Sampling alone is timed too.

    .venv/bin/python bench/tile2vec.py [--steps 10] [--batch 64] [--tile 1.0]

The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audiorep.data.samplers import TripletSampler
from audiorep.features import LogMel
from audiorep.models.tile2vec import Tile2Vec, triplet_loss

SR = 16000


class PackedClips:
    """64 random 4 s clips (tones in noise), packed as a clip data module serves them."""

    def __init__(self, num_clips: int = 64, seconds: float = 4.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        t = np.arange(int(seconds * SR)) / SR
        clips = [
            0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
            + 0.05 * rng.standard_normal(len(t))
            for _ in range(num_clips)
        ]
        self.audio = np.concatenate(clips).astype(np.float32)
        self.offsets = np.arange(num_clips + 1, dtype=np.int64) * len(t)

    @property
    def packed_audio(self):
        return self.audio, self.offsets

    def split_indices(self, split: str) -> np.ndarray:
        return np.arange(len(self.offsets) - 1)


def triplets_per_second(encoder: str, dataset, batch: int, steps: int, tile: float) -> float:
    feature = LogMel(SR, n_fft=1024, win_length=480, hop_length=160, n_mels=128, fmin=50.0)
    model = Tile2Vec([1], feature, encoder=encoder, tile_seconds=tile, embedding_dim=256)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(i: int) -> None:
        triplets = dataset.__getitems__(list(range(i * batch, (i + 1) * batch)))
        tiles = torch.cat([triplets["anchor"], triplets["neighbour"], triplets["distant"]])
        embedded, _ = model.encode_tiles(tiles)
        loss, _ = triplet_loss(*embedded.split(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(0)  # warm-up: allocations, first-call overheads
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tile", type=float, default=1.0, help="tile seconds")
    args = parser.parse_args()
    torch.manual_seed(0)
    sampler = TripletSampler(SR, args.tile, 1.0, triplets_per_epoch=10**9)
    dataset = sampler.dataset(PackedClips(), "train", 0)

    start = time.perf_counter()
    for i in range(20):
        dataset.__getitems__(list(range(i * args.batch, (i + 1) * args.batch)))
    sampling = 20 * args.batch / (time.perf_counter() - start)

    print(f"torch threads: {torch.get_num_threads()}; batch {args.batch}, {args.tile} s tiles")
    print(f"sampling only: {sampling:,.0f} triplets/s")
    result: dict[str, float | int] = {
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "tile_seconds": args.tile,
        "sampling_triplets_per_s": round(sampling, 1),
    }
    reference = triplets_per_second("dense", dataset, args.batch, args.steps, args.tile)
    print(f"dense (reference): {reference:,.1f} triplets/s")
    result["dense_triplets_per_s"] = round(reference, 1)
    for encoder in ("conv2d", "crnn"):
        rate = triplets_per_second(encoder, dataset, args.batch, args.steps, args.tile)
        print(f"{encoder}: {rate:,.1f} triplets/s ({rate / reference:.3f}x the dense reference)")
        result[f"{encoder}_triplets_per_s"] = round(rate, 1)
        result[f"{encoder}_vs_dense"] = round(rate / reference, 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
