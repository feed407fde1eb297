"""Additive synthesis of harmonic / inharmonic tones (the ATIAM toy-dataset engine).

A sound is a sum of ``n_partials`` zero-phase sines. Partial ``k`` (1-based) sits at
``k * f0 * sqrt(1 + B * k**2)`` with amplitude ``max(0, ((k - 1) * slope + n) / n)``;
partials at or above Nyquist are dropped (never aliased). The sum is multiplied by
``exp(-decay * t)``, peak-normalised, and optionally mixed with seeded white noise at a
given SNR.

Speed: each sound is rendered as one small matrix product. Writing the sample index as
``n = R * q + r`` (``q`` the block, ``r`` the offset inside it), the angle-addition
identity gives ``sin(w (Rq + r)) = sin(wRq) cos(wr) + cos(wRq) sin(wr)`` and the
envelope factorises the same way, ``exp(-d (Rq + r)) = exp(-dRq) exp(-dr)``. So the
whole sound is ``(Q, 2K) @ (2K, R)``: the trigonometric factors are only computed for
``Q + R ~ 2 sqrt(T)`` points per partial (cycle counts reduced mod 1 in float64, so
phases stay accurate at large ``f * t``), and the per-sample work is a float32 batched
matmul. Max abs error against a float64 per-partial loop: < 1e-6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "HARMONICS",
    "SYNTH_VERSION",
    "partial_frequencies",
    "partial_amplitudes",
    "render_additive",
    "render_additive_reference",
]

# Bump when the rendered audio changes for the same parameters: cached datasets keyed
# on it are then regenerated instead of silently reused.
SYNTH_VERSION = 1

HARMONICS = ("all", "odd", "even")

# Parameters accepted as scalars or one value per sound.
ArrayLike = float | Sequence[float] | np.ndarray


def _harmonic_codes(harmonics: str | Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    """Map harmonic-presence names (or their indices into HARMONICS) to codes, shape (n,)."""
    values = np.atleast_1d(np.asarray(harmonics))
    if values.dtype.kind in "iu":
        codes = values.astype(np.int64)
        bad = codes[(codes < 0) | (codes >= len(HARMONICS))]
        if bad.size:
            raise ValueError(
                f"harmonics index {bad[0]} is out of range; valid: 0..{len(HARMONICS) - 1}"
            )
    else:
        lookup = {name: i for i, name in enumerate(HARMONICS)}
        try:
            codes = np.array([lookup[str(v)] for v in values], dtype=np.int64)
        except KeyError as err:
            raise ValueError(
                f"unknown harmonics value {err.args[0]!r}; choose one of {list(HARMONICS)}"
            ) from None
    return np.broadcast_to(codes, (n,)).copy()


def partial_frequencies(
    f0: ArrayLike, inharmonicity: ArrayLike, n_partials: int = 10
) -> np.ndarray:
    """Frequencies (Hz) of the partials, ``k f0 sqrt(1 + B k^2)``: (N,) -> (N, n_partials) float64."""
    f0 = np.atleast_1d(np.asarray(f0, dtype=np.float64))
    b = np.atleast_1d(np.asarray(inharmonicity, dtype=np.float64))
    k = np.arange(1, n_partials + 1, dtype=np.float64)
    return f0[:, None] * k * np.sqrt(1.0 + b[:, None] * k**2)


def partial_amplitudes(
    f0: ArrayLike,
    slope: ArrayLike,
    inharmonicity: ArrayLike,
    harmonics: str | Sequence[str] | np.ndarray = "all",
    *,
    n_partials: int = 10,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Linear amplitudes of the partials, zero where dropped: (N,) -> (N, n_partials) float64.

    Dropped partials: at or above Nyquist, and the even (odd) ones for ``harmonics="odd"``
    (``"even"``). Partial 1 is the fundamental, so ``"even"`` removes it.
    """
    f0 = np.atleast_1d(np.asarray(f0, dtype=np.float64))
    slope = np.atleast_1d(np.asarray(slope, dtype=np.float64))
    f0, slope, inharmonicity = np.broadcast_arrays(f0, slope, np.asarray(inharmonicity, float))
    n = n_partials
    k = np.arange(1, n + 1, dtype=np.float64)
    amp = np.maximum(0.0, ((k - 1.0) * slope[:, None] + n) / n)
    freqs = partial_frequencies(f0, inharmonicity, n)
    amp[freqs >= sample_rate / 2] = 0.0
    codes = _harmonic_codes(harmonics, len(f0))
    is_odd = (np.arange(1, n + 1) % 2 == 1)[None, :]
    amp[(codes[:, None] == 1) & ~is_odd] = 0.0
    amp[(codes[:, None] == 2) & is_odd] = 0.0
    return amp


def _check_params(
    f0: np.ndarray,
    slope: np.ndarray,
    inharmonicity: np.ndarray,
    decay: np.ndarray,
    snr_db: np.ndarray | None,
    amps: np.ndarray,
    codes: np.ndarray,
    sample_rate: int,
) -> None:
    """Raise ValueError naming the parameter for settings that cannot be rendered."""
    nyquist = sample_rate / 2
    if not np.all(np.isfinite(f0)) or np.any(f0 <= 0):
        raise ValueError(f"f0 must be positive and finite (got min {np.min(f0)} Hz)")
    if np.any(f0 >= nyquist):
        raise ValueError(
            f"f0 = {np.max(f0)} Hz is at or above Nyquist ({nyquist} Hz at sample_rate "
            f"{sample_rate}): every partial would be dropped; lower f0 or raise sample_rate"
        )
    if np.any(decay < 0) or not np.all(np.isfinite(decay)):
        raise ValueError(
            f"decay must be >= 0 (got {np.min(decay)}); it is the rate of exp(-decay*t)"
        )
    if np.any(inharmonicity < 0) or not np.all(np.isfinite(inharmonicity)):
        raise ValueError(f"inharmonicity must be >= 0 (got {np.min(inharmonicity)})")
    if not np.all(np.isfinite(slope)):
        raise ValueError("slope must be finite")
    if snr_db is not None and not np.all(np.isfinite(snr_db)):
        raise ValueError("snr_db must be finite (use None for no noise)")
    silent = ~np.any(amps > 0, axis=1)
    if np.any(silent):
        i = int(np.flatnonzero(silent)[0])
        raise ValueError(
            f"no audible partial for f0={f0[i]}, slope={slope[i]}, inharmonicity="
            f"{inharmonicity[i]}, harmonics={HARMONICS[codes[i]]!r} at sample_rate {sample_rate}: "
            "every kept partial is at or above Nyquist or has zero amplitude; lower f0 or "
            "inharmonicity, use a gentler slope, or raise sample_rate"
        )


def _block_size(num_samples: int) -> int:
    """Inner block length R ~ sqrt(T), so both trig tables stay small.

    A divisor of T is preferred: the matmul then writes the output in place, unpadded.
    """
    root = math.isqrt(num_samples)
    for r in range(root, max(1, root // 2) - 1, -1):
        if num_samples % r == 0:
            return r
    return max(1, int(math.ceil(math.sqrt(num_samples))))


def _render_chunk(
    freqs: np.ndarray,
    amps: np.ndarray,
    decay: np.ndarray,
    sample_rate: int,
    out: torch.Tensor,
) -> None:
    """Damped sums of sines for one chunk into ``out``: freqs/amps (C, K), decay (C,) -> (C, T)."""
    num_samples = out.shape[1]
    r_len = _block_size(num_samples)
    q_len = -(-num_samples // r_len)
    # Cycles per sample and block offsets in float64; the fractional part of the cycle
    # count is taken in float64, so only a phase in [0, 2 pi) is rounded to float32
    # (error ~4e-7 rad) however large f * t gets.
    cps = torch.from_numpy(freqs / sample_rate)[:, :, None]  # (C, K, 1)
    q = torch.arange(q_len, dtype=torch.float64) * r_len
    r = torch.arange(r_len, dtype=torch.float64)
    phase_q = (2 * math.pi) * torch.frac(cps * q).float()  # (C, K, Q)
    phase_r = (2 * math.pi) * torch.frac(cps * r).float()  # (C, K, R)
    d = torch.from_numpy(decay / sample_rate)[:, None, None]  # decay per sample
    a = (torch.from_numpy(amps)[:, :, None] * torch.exp(-d * q)).float()  # (C, K, Q)
    env_r = torch.exp(-d * r).float()  # (C, 1, R)
    left = torch.cat([a * torch.sin(phase_q), a * torch.cos(phase_q)], dim=1)  # (C, 2K, Q)
    right = torch.cat([torch.cos(phase_r), torch.sin(phase_r)], dim=1) * env_r  # (C, 2K, R)
    if q_len * r_len == num_samples:
        torch.bmm(left.transpose(1, 2), right, out=out.view(len(freqs), q_len, r_len))
    else:
        out.copy_(torch.bmm(left.transpose(1, 2), right).reshape(len(freqs), -1)[:, :num_samples])


def _peak_normalise_(x: torch.Tensor, peak: float) -> None:
    """Scale each row of (C, T) in place so its largest magnitude is ``peak``."""
    # max(amax, -amin) avoids the full-size temporary that x.abs() would allocate.
    biggest = torch.maximum(x.amax(dim=1), -x.amin(dim=1))
    x.mul_((peak / biggest)[:, None])


def _noise(seed: int, noise_ids: np.ndarray, num_samples: int) -> np.ndarray:
    """Unit white Gaussian noise, one independent stream per sound id: (C, T) float64."""
    return np.stack(
        [np.random.default_rng([seed, int(i)]).standard_normal(num_samples) for i in noise_ids]
    )


def render_additive(
    f0: ArrayLike,
    slope: ArrayLike,
    inharmonicity: ArrayLike = 0.0,
    decay: ArrayLike = 0.0,
    *,
    harmonics: str | Sequence[str] | np.ndarray = "all",
    snr_db: ArrayLike | None = None,
    sample_rate: int = 16000,
    duration: float = 1.0,
    n_partials: int = 10,
    peak: float = 0.9,
    seed: int = 0,
    noise_ids: np.ndarray | Sequence[int] | None = None,
    chunk_size: int = 512,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Render N additive-synthesis tones; parameters are scalars or (N,) -> (N, T) float32.

    ``T = round(duration * sample_rate)``. Each tone is peak-normalised to ``peak``; with
    ``snr_db`` white noise is added at that SNR (against the normalised tone's power) and
    the result is peak-normalised again, which keeps the SNR exact and the audio within
    [-peak, peak]. The noise of sound ``i`` comes from ``default_rng([seed, noise_ids[i]])``
    (``noise_ids`` defaults to ``0..N-1``), so it does not depend on the chunking.
    Deterministic: the same arguments give bit-identical output. ``out`` (N, T) float32,
    e.g. a slice of a memmap, receives the audio instead of a new array.
    """
    params = [
        np.atleast_1d(np.asarray(p, dtype=np.float64)) for p in (f0, slope, inharmonicity, decay)
    ]
    if snr_db is not None:
        params.append(np.atleast_1d(np.asarray(snr_db, dtype=np.float64)))
    harm = np.atleast_1d(np.asarray(harmonics))
    n = max(max(len(p) for p in params), len(harm))
    params = [np.broadcast_to(p, (n,)).copy() for p in params]
    f0_a, slope_a, inh_a, decay_a = params[:4]
    snr_a = params[4] if snr_db is not None else None
    codes = _harmonic_codes(harm, n)
    if n_partials < 1:
        raise ValueError(f"n_partials must be >= 1 (got {n_partials})")
    if not 0 < peak <= 1:
        raise ValueError(f"peak must be in (0, 1] (got {peak})")
    num_samples = int(round(duration * sample_rate))
    if num_samples < 1:
        raise ValueError(f"duration * sample_rate must give at least one sample (got {duration} s)")
    amps = partial_amplitudes(
        f0_a, slope_a, inh_a, codes, n_partials=n_partials, sample_rate=sample_rate
    )
    _check_params(f0_a, slope_a, inh_a, decay_a, snr_a, amps, codes, sample_rate)
    freqs = partial_frequencies(f0_a, inh_a, n_partials)
    ids = np.arange(n) if noise_ids is None else np.asarray(noise_ids, dtype=np.int64)
    if ids.shape != (n,):
        raise ValueError(f"noise_ids must have shape ({n},), got {ids.shape}")

    if out is None:
        out = np.empty((n, num_samples), dtype=np.float32)
    elif out.shape != (n, num_samples) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, num_samples)}")
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        x = torch.from_numpy(out[sl])  # shares memory: the chunk is rendered in place
        _render_chunk(freqs[sl], amps[sl], decay_a[sl], sample_rate, x)
        _peak_normalise_(x, peak)
        if snr_a is not None:
            x.copy_(_add_noise(x, snr_a[sl], _noise(seed, ids[sl], num_samples), peak))
    return out


def _add_noise(x: torch.Tensor, snr_db: np.ndarray, noise: np.ndarray, peak: float) -> torch.Tensor:
    """Mix unit noise (C, T) into tones (C, T) at snr_db (C,), then re-peak-normalise."""
    signal_power = x.double().pow(2).mean(dim=1, keepdim=True)
    noise_std = torch.sqrt(signal_power / torch.from_numpy(10.0 ** (snr_db / 10.0))[:, None])
    y = x.double() + noise_std * torch.from_numpy(noise)
    return (y * (peak / y.abs().amax(dim=1, keepdim=True))).float()


def render_additive_reference(
    f0: float,
    slope: float,
    inharmonicity: float = 0.0,
    decay: float = 0.0,
    *,
    harmonics: str = "all",
    sample_rate: int = 16000,
    duration: float = 1.0,
    n_partials: int = 10,
    peak: float = 0.9,
) -> np.ndarray:
    """Straightforward float64 per-partial loop for one noiseless tone -> (T,) float64.

    The accuracy reference for ``render_additive`` and the baseline of ``bench/synth.py``.
    """
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    x = np.zeros_like(t)
    for k in range(1, n_partials + 1):
        fk = k * f0 * math.sqrt(1 + inharmonicity * k * k)
        keep = harmonics == "all" or (harmonics == "odd") == (k % 2 == 1)
        if fk >= sample_rate / 2 or not keep:
            continue
        x += max(0.0, ((k - 1) * slope + n_partials) / n_partials) * np.sin(2 * np.pi * fk * t)
    x *= np.exp(-decay * t)
    return x * (peak / np.max(np.abs(x)))
