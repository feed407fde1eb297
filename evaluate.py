"""Evaluate a trained run: `python evaluate.py run=<run dir>` or `python evaluate.py ckpt=<path>`.

Writes <run dir>/eval/metrics.json and figures, and logs them to the run's W&B run.
`data=<name>` scores the model on other data; `viewer=true` builds the embedding viewer.
"""

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from audiorep.tasks.evaluate import evaluate_run

    if not cfg.run and not cfg.ckpt:
        raise SystemExit(
            "evaluate.py needs `run=<run dir>` (as printed by train.py) or `ckpt=<checkpoint path>`"
        )
    metrics = evaluate_run(
        cfg.run,
        cfg.eval,
        seed=cfg.seed,
        log_to_wandb=cfg.log_to_wandb,
        ckpt_path=cfg.ckpt,
        which=cfg.which,
        data_cfg=cfg.get("data"),
        viewer=cfg.viewer,
        model_overrides=OmegaConf.to_container(cfg.model_overrides) or None,
    )
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print({k: round(v, 4) for k, v in shown.items()})


if __name__ == "__main__":
    main()
