"""Run directories named by their config, so the same command finds (and resumes) the same run."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from omegaconf import OmegaConf

# Overrides that pick the experiment already name the run's parent folder.
ALWAYS_EXCLUDED = ("experiment",)


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _is_excluded(key: str, excluded: Iterable[str]) -> bool:
    return any(
        key == name or key.startswith(f"{name}.") or key.startswith(f"{name}/") for name in excluded
    )


def run_name(overrides: Sequence[str], exclude: Sequence[str] = ()) -> str:
    """A readable, collision-safe folder name for a list of Hydra overrides.

    Overrides whose key is in `exclude` (or below it) do not change the result and are left
    out, so `resume=false` or `logger=csv` land in the same folder. The order of overrides
    does not matter. No overrides gives "default".
    """
    excluded = (*ALWAYS_EXCLUDED, *exclude)
    kept = sorted(o for o in overrides if not _is_excluded(_override_key(o), excluded))
    if not kept:
        return "default"
    digest = hashlib.sha1("\n".join(kept).encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9._=,+-]", "_", ",".join(kept).replace("/", "-"))
    return f"{readable[:80]}_{digest}"


def sweep_group(argv: Sequence[str]) -> str:
    """W&B group shared by the runs of one sweep: a hash of the sweep's command line."""
    args = sorted(a for a in argv if a not in ("-m", "--multirun"))
    return "sweep-" + hashlib.sha1("\n".join(args).encode()).hexdigest()[:8]


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    """A duration in samples, rounded: hops and tiles are given in seconds in the configs."""
    return int(round(float(seconds) * int(sample_rate)))


def register_resolvers() -> None:
    """`${run_name:${hydra:overrides.task},${run_name_exclude}}` and
    `${samples:<seconds>,${data.sample_rate}}` in the Hydra configs."""
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver(
            "run_name", lambda overrides, exclude: run_name(list(overrides), list(exclude or ()))
        )
    if not OmegaConf.has_resolver("samples"):
        OmegaConf.register_new_resolver("samples", seconds_to_samples)
