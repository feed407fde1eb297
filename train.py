"""Train a model: `python train.py [experiment=<name>] [group=option ...] [key=value ...]`.

Running the same command again resumes the run from its last checkpoint. See README.md.
"""

import os
import sys

import hydra
from omegaconf import DictConfig

from audiorep.tasks.rundir import sweep_group  # also registers the run_name resolver


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from audiorep.tasks.train import train

    return train(cfg)


if __name__ == "__main__":
    if any(
        arg in ("-m", "--multirun") or arg.startswith("hparams_search=") for arg in sys.argv[1:]
    ):
        # Inherited by joblib and SLURM workers: every run of this sweep shares a W&B group.
        os.environ.setdefault("AUDIOREP_SWEEP_GROUP", sweep_group(sys.argv[1:]))
    main()
