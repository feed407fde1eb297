"""Benchmark the disentanglement suite and its fast DCI against disentanglement_lib's DCI.

    .venv/bin/python bench/metrics.py [--n 10000] [--skip-reference]

A synthetic ground-truth dataset like the toy synth (4 factors of sizes 19, 9, 11, 11)
is encoded by a noisy nonlinear mix into 10 code dims. The script times each metric and
the whole suite on n samples, and times disentanglement_lib's DCI (sklearn
GradientBoostingClassifier, one factor after another) on the same train/test codes as
the fast DCI (HistGradientBoosting split-gain importances) to report the speedup and how
closely the two agree. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorep.evaluation import disentanglement as dis  # noqa: E402

# Agreement the fast importances must reach against sklearn's GradientBoostingClassifier
# on the same data. Two boosters on binned vs exact thresholds split differently on
# near-ties, so single entries move by a few hundredths; the DCI scores, which average
# over the whole matrix, move much less.
IMPORTANCE_TOLERANCE = 0.05
DCI_TOLERANCE = 0.02
GOAL_SECONDS = 60.0


class NoisyMixData:
    """Four factors (sizes 19, 9, 11, 11); observations are the factor values in [0, 1]."""

    factor_names = ["pitch", "brightness", "attack", "loudness"]
    factor_sizes = [19, 9, 11, 11]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(s, size=n) for s in self.factor_sizes], axis=1)

    def observations_from_factors(self, factor_indices: np.ndarray) -> np.ndarray:
        return factor_indices / (np.asarray(self.factor_sizes) - 1.0)


class NoisyMixEncoder:
    """Codes (n, 10): mostly-aligned nonlinear dims, one mixed pair, noise-only dims."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        mix = np.zeros((4, 10))
        mix[[0, 1, 2, 3], [0, 1, 2, 3]] = [3.0, 2.5, 2.0, 2.0]
        mix[[0, 1], [4, 4]] = [1.5, -1.5]  # a dim that mixes pitch and brightness
        mix[[2, 3], [5, 5]] = [1.0, 1.0]
        mix += 0.2 * rng.standard_normal(mix.shape)  # every dim leaks a little of every factor
        self.mix = mix
        self.noise = np.array([0.05] * 6 + [1.0] * 4)
        self.rng = np.random.default_rng(seed + 1)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        z = np.tanh((observations - 0.5) @ self.mix)
        return z + self.noise * self.rng.standard_normal(z.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="train samples per metric")
    parser.add_argument("--skip-reference", action="store_true", help="skip sklearn GB DCI")
    args = parser.parse_args()
    n, n_test = args.n, args.n // 2
    data, encoder = NoisyMixData(), NoisyMixEncoder()
    counts = {"num_train": n, "num_test": n_test, "num_eval": n_test}

    start = time.perf_counter()
    scores = dis.evaluate(data, encoder, seed=0, num_variance_estimate=n, **counts)
    suite_seconds = time.perf_counter() - start
    print(f"suite on n={n}: {suite_seconds:.1f} s (goal < {GOAL_SECONDS:.0f} s)")
    for name, seconds in scores["seconds"].items():
        print(f"  {name:<26} {seconds:6.2f} s")
    for key in dis.SCORE_KEYS:
        print(f"  {key:<26} {scores[key]:.4f}")
    print(f"  versions: {scores['versions']}")

    # Fast and reference DCI on the very same codes.
    rng = np.random.default_rng(1)
    x_train, y_train = dis.sample_codes_and_factors(data, encoder, n, rng)
    x_test, y_test = dis.sample_codes_and_factors(data, encoder, n_test, rng)
    start = time.perf_counter()
    imp_fast, _, acc_fast = dis.gradient_boosting_importance(
        x_train, y_train, x_test, y_test, booster="hist"
    )
    fast_seconds = time.perf_counter() - start
    dci_fast = dis.dci_from_importance(imp_fast)
    print(
        f"DCI fast (hist):       {fast_seconds:6.2f} s  {dci_fast}  informativeness {acc_fast.mean():.4f}"
    )

    result: dict[str, object] = {
        "n": n,
        "suite_seconds": round(suite_seconds, 2),
        "metric_seconds": {k: round(v, 2) for k, v in scores["seconds"].items()},
        "dci_fast_seconds": round(fast_seconds, 2),
        "goal_suite_under_60s": suite_seconds < GOAL_SECONDS,
    }
    if not args.skip_reference:
        start = time.perf_counter()
        imp_ref, _, acc_ref = dis.gradient_boosting_importance(
            x_train, y_train, x_test, y_test, booster="sklearn_gb"
        )
        ref_seconds = time.perf_counter() - start
        dci_ref = dis.dci_from_importance(imp_ref)
        print(
            f"DCI reference (GB):    {ref_seconds:6.2f} s  {dci_ref}  informativeness {acc_ref.mean():.4f}"
        )
        max_diff = float(np.max(np.abs(imp_fast - imp_ref)))
        d_diff = abs(dci_fast["disentanglement"] - dci_ref["disentanglement"])
        c_diff = abs(dci_fast["completeness"] - dci_ref["completeness"])
        i_diff = abs(float(acc_fast.mean() - acc_ref.mean()))
        speedup = ref_seconds / fast_seconds
        print(
            f"speedup {speedup:.1f}x; importance max |diff| {max_diff:.4f} (tol {IMPORTANCE_TOLERANCE})"
        )
        print(f"DCI diff: D {d_diff:.4f}, C {c_diff:.4f} (tol {DCI_TOLERANCE}), I {i_diff:.4f}")
        print("importance fast (D x F):\n" + np.array2string(imp_fast, precision=3))
        print("importance reference (D x F):\n" + np.array2string(imp_ref, precision=3))
        result.update(
            dci_reference_seconds=round(ref_seconds, 2),
            speedup=round(speedup, 2),
            importance_max_abs_diff=round(max_diff, 4),
            dci_disentanglement_diff=round(d_diff, 4),
            dci_completeness_diff=round(c_diff, 4),
            dci_informativeness_diff=round(i_diff, 4),
            importance_tolerance=IMPORTANCE_TOLERANCE,
            dci_tolerance=DCI_TOLERANCE,
            within_tolerance=max_diff <= IMPORTANCE_TOLERANCE
            and max(d_diff, c_diff) <= DCI_TOLERANCE,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
