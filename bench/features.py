"""Benchmark: our Mel and CQT against librosa, batched and per clip.

64 clips x 2 s at 16 kHz, 2 CPU threads. Each figure is the best of several runs after a
warm-up, interleaved so that load from other processes hits every contender alike,
with a short pause before each run so one contender's spinning threads do not slow the next.
Goals: >= 1x librosa's batched call and >= 10x a per-clip librosa loop, for mel and CQT.
The last line printed is a JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from audiorep.features import CQT, Mel

SR, N_CLIPS, SECONDS, REPEATS = 16000, 64, 2.0, 7
SETTLE_SECONDS = 0.3
MEL_ARGS = dict(n_fft=1024, hop_length=256, n_mels=64)
CQT_ARGS = dict(hop_length=256, fmin=32.70, n_bins=84, bins_per_octave=12)


def best_times(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time in seconds of each callable, runs interleaved round-robin."""
    for fn in contenders.values():
        fn()  # warm-up: caches, filter construction, thread pools
    times = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            # numpy's OpenBLAS and torch's OpenMP workers spin for a while after a call;
            # on 2 cores that steals the next contender's CPU, so let them go idle first.
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - start)
    return times


def main() -> None:
    import librosa

    warnings.filterwarnings("ignore", category=UserWarning)
    # Default 2 threads (the target machine's cores); AUDIOREP_BENCH_THREADS overrides,
    # e.g. 1 when other jobs share the cores and OpenMP threads would contend.
    torch.set_num_threads(int(os.environ.get("AUDIOREP_BENCH_THREADS", "2")))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((N_CLIPS, int(SR * SECONDS)))).astype(np.float32)
    tensor = torch.from_numpy(audio)
    mel, cqt = Mel(SR, **MEL_ARGS), CQT(SR, **CQT_ARGS)

    def ours(feature: torch.nn.Module) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                return feature(tensor)

        return run

    def lib_mel(y: np.ndarray) -> np.ndarray:
        return librosa.feature.melspectrogram(y=y, sr=SR, pad_mode="constant", **MEL_ARGS)

    def lib_cqt(y: np.ndarray) -> np.ndarray:
        return np.abs(librosa.cqt(y, sr=SR, **CQT_ARGS))

    figures: dict[str, float | bool] = {}
    for name, feature, lib in (("mel", mel, lib_mel), ("cqt", cqt, lib_cqt)):
        fast = best_times({"ours": ours(feature), "batched": lambda lib=lib: lib(audio)}, REPEATS)
        # The per-clip loop is ~10x slower: fewer repeats keep the run short.
        loop = best_times(
            {"loop": lambda lib=lib: [lib(clip) for clip in audio]}, max(2, REPEATS // 3)
        )
        figures[f"{name}_seconds"] = fast["ours"]
        figures[f"{name}_librosa_batched_seconds"] = fast["batched"]
        figures[f"{name}_librosa_loop_seconds"] = loop["loop"]
        figures[f"{name}_vs_librosa_batched"] = fast["batched"] / fast["ours"]
        figures[f"{name}_vs_librosa_loop"] = loop["loop"] / fast["ours"]
        print(
            f"{name}: ours {fast['ours'] * 1e3:.1f} ms | librosa batched "
            f"{fast['batched'] * 1e3:.1f} ms ({figures[f'{name}_vs_librosa_batched']:.2f}x) | "
            f"librosa per-clip loop {loop['loop'] * 1e3:.1f} ms "
            f"({figures[f'{name}_vs_librosa_loop']:.1f}x)"
        )
    figures["goals_met"] = all(
        figures[f"{n}_vs_librosa_batched"] >= 1.0 and figures[f"{n}_vs_librosa_loop"] >= 10.0
        for n in ("mel", "cqt")
    )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
