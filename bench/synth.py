"""Benchmark: render the default toy grid (20,691 x 1 s at 16 kHz, 10 partials).

The vectorised engine renders the WHOLE grid in memory (no disk cache); a per-partial
Python/numpy float64 loop renders a random subset of the grid and its rate is
extrapolated to the whole grid. The same subset checks the engine's accuracy against
the float64 loop. The last line printed is a JSON object.

    python bench/synth.py [--reference-clips 1000] [--chunk-size 512]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audiorep.audio.synthesis import render_additive, render_additive_reference
from audiorep.data.toy_synth import FactorGrid, render_toy_sounds

SAMPLE_RATE, DURATION, N_PARTIALS = 16000, 1.0, 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference-clips", type=int, default=1000, help="subset size for the loop reference"
    )
    parser.add_argument("--chunk-size", type=int, default=512, help="sounds per batched render")
    args = parser.parse_args()

    grid = FactorGrid.from_config(None)
    n = grid.num_items
    params = grid.synth_params(np.arange(n))
    params.pop("snr_db")
    kw = dict(sample_rate=SAMPLE_RATE, duration=DURATION, n_partials=N_PARTIALS)
    print(
        f"default grid: {n} sounds x {int(SAMPLE_RATE * DURATION)} samples, {N_PARTIALS} partials"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    render_additive(**{k: v[:64] for k, v in params.items()}, **kw)  # warm-up
    start = time.perf_counter()
    audio = render_additive(**params, **kw, chunk_size=args.chunk_size)
    engine_s = time.perf_counter() - start
    engine_rate = n / engine_s
    print(f"engine   : whole grid in {engine_s:.2f} s -> {engine_rate:,.0f} clips/s")

    subset = np.sort(np.random.default_rng(0).choice(n, args.reference_clips, replace=False))
    start = time.perf_counter()
    reference = np.stack(
        [
            render_additive_reference(
                params["f0"][i],
                params["slope"][i],
                params["inharmonicity"][i],
                params["decay"][i],
                **kw,
            )
            for i in subset
        ]
    )
    ref_s = time.perf_counter() - start
    ref_rate = len(subset) / ref_s
    print(
        f"reference: {len(subset)} clips in {ref_s:.2f} s -> {ref_rate:,.0f} clips/s "
        f"(whole grid extrapolated: {n / ref_rate:.0f} s)"
    )
    max_err = float(np.abs(audio[subset] - reference).max())
    # The dataset path (grid -> params -> engine) must agree with the direct render.
    same = np.array_equal(
        render_toy_sounds({**kw, "peak": 0.9}, grid, subset[:8]), audio[subset[:8]]
    )
    speedup = engine_rate / ref_rate
    print(
        f"speedup  : {speedup:.1f}x; max abs error vs float64 loop: {max_err:.2e}; dataset path equal: {same}"
    )
    print(
        json.dumps(
            {
                "clips_per_second": round(engine_rate, 1),
                "reference_clips_per_second": round(ref_rate, 1),
                "speedup": round(speedup, 2),
                "full_grid_seconds": round(engine_s, 3),
                "full_grid_rendered": True,
                "reference_clips": len(subset),
                "max_abs_error": max_err,
                "goal_under_60s": engine_s < 60.0,
            }
        )
    )


if __name__ == "__main__":
    main()
