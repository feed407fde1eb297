"""Shared fixtures: real configs composed from conf/, shrunk to run in seconds in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
# Heavy datasets swapped for their small grid in tests.
SMALL_DATA = {
    "toy_synth": "toy_synth_small",
    "soundfont_notes": "soundfont_notes_small",
    "spoken_digits": "spoken_digits_small",
    "soundfont_notes_full": "soundfont_notes_small",
}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the whole session, so each dataset is rendered once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def compose_train(tmp_path: Path, data_dir: Path) -> Callable:
    """compose_train(*overrides) -> the train config, run directory in tmp_path."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import audiorep.tasks  # noqa: F401 - registers the run_name resolver

    def _compose(*overrides: str, small: bool = True):
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
            data_choice = cfg.hydra.runtime.choices.get("data")
            if small and data_choice in SMALL_DATA:
                cfg = compose(
                    "train",
                    overrides=[*overrides, f"data={SMALL_DATA[data_choice]}"],
                    return_hydra_config=True,
                )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.data_dir = str(data_dir)
            del cfg.hydra
        return cfg

    return _compose


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (never `playwright install`)."""
    from audiorep.viewer.testing import CHROMIUM_ARGS, chromium_executable

    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no chromium: apt-get install chromium (or set AUDIOREP_CHROMIUM)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def fit_recording_losses() -> Callable:
    """fit(model, loader, max_epochs) -> the training loss of every step: a bare Lightning
    fit (no logger, checkpoints or progress bar) for the short training tests."""
    import lightning as L

    def fit(model, loader, max_epochs: int) -> list[float]:
        losses: list[float] = []

        class Record(L.Callback):
            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                losses.append(float(outputs["loss"]))

        trainer = L.Trainer(
            max_epochs=max_epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[Record()],
        )
        trainer.fit(model, train_dataloaders=loader)
        return losses

    return fit
