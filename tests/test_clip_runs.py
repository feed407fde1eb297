"""End-to-end on real audio files: doc2vec trains on a folder of audio, writes the seed's
outputs, and the evaluation protocol scores it and the baselines; other data; the viewer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiorep.audio.io import write_wav

SR = 16000
CLASSES = ("sine", "buzz", "noise")


def _clip(kind: str, f0: float, rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    if kind == "sine":
        x = np.sin(2 * np.pi * f0 * t)
    elif kind == "buzz":
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12) if k * f0 < SR / 2)
    else:
        x = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same")
    envelope = 0.6 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    return (0.4 * envelope * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def audio_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three well-separated classes, a folder each; clip lengths vary."""
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for kind in CLASSES:
        for i in range(14):
            f0 = rng.uniform(150, 600)
            seconds = rng.uniform(1.0, 1.6)
            write_wav(root / kind / f"{kind}_{i:02d}.wav", _clip(kind, f0, rng, seconds), SR)
    return root


@pytest.fixture(scope="module")
def doc2vec_run(audio_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short doc2vec run on the folder, evaluated with the protocol and the viewer."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import audiorep.tasks  # noqa: F401 - resolvers
    from audiorep.tasks.evaluate import evaluate_run
    from audiorep.tasks.train import train

    out = tmp_path_factory.mktemp("doc2vec")
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(Path(__file__).parents[1] / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=sound_eval_doc2vec",
                "data=audio_folder",
                f"data.root={audio_root}",
                "data.clip_seconds=1.0",
                "data.splits=[0.5,0.25,0.25]",
                "data.preprocess_workers=0",
                "data.sampler.pairs_per_epoch=12800",
                "data.sampler.val_pairs=1024",
                "trainer.max_epochs=2",
                "logger=csv",
                "callbacks.progress_bar=null",
                "model.infer_steps=40",
                "evaluate=false",
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / "run")
        cfg.paths.data_dir = str(out / "data")
        del cfg.hydra
    train(cfg)
    with open_dict(cfg):
        cfg.eval.figures.enabled = False
        cfg.eval.viewer.projections = ["tsne"]
    evaluate_run(out / "run", cfg.eval, seed=0, log_to_wandb=False, viewer=True)
    return out / "run"


def test_doc2vec_run_holds_the_seed_outputs(doc2vec_run: Path):
    vectors = np.load(doc2vec_run / "clip_vectors.npy")
    clips = (doc2vec_run / "clip_list.txt").read_text().splitlines()
    assert vectors.shape == (len(clips), 32)
    assert all(c.endswith(".wav") for c in clips)
    rows = (doc2vec_run / "cost_per_step.csv").read_text().splitlines()
    assert rows[0] == "step,loss" and len(rows) > 5
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    assert steps == sorted(set(steps))


def test_protocol_metrics_for_the_model_and_the_baselines(doc2vec_run: Path):
    metrics = json.loads((doc2vec_run / "eval" / "metrics.json").read_text())
    keys = [
        "probe/logreg/accuracy",
        "probe/logreg/macro_f1",
        "probe/svm/accuracy",
        "knn/accuracy",
        "kmeans/nmi",
        "kmeans/ari",
        "silhouette",
    ]
    for scores in (metrics, *metrics["baselines"].values()):
        for key in keys:
            assert -1.0 <= scores[f"label/{key}"] <= 1.0, key
    assert set(metrics["baselines"]) == {"mfcc_stats", "logmel_mean"}
    # Three timbres over random pitches, 10 test clips: well above chance (1/3) for both.
    assert metrics["baselines"]["mfcc_stats"]["label/probe/logreg/accuracy"] >= 0.7
    assert metrics["label/probe/logreg/accuracy"] > 0.5


def test_embeddings_file_and_viewer(doc2vec_run: Path):
    data = np.load(doc2vec_run / "eval" / "embeddings.npz")
    # inferred vector (32) + tower-1 mean and std (64): the experiment's embedding.
    assert data["embeddings"].shape == (42, 96)
    assert set(data["meta:label"]) == set(CLASSES)
    assert set(data["meta:split"]) == {"train", "val", "test"}
    assert all(Path(p).is_file() for p in data["audio_path"])
    viewer = doc2vec_run / "eval" / "viewer"
    assert (viewer / "index.html").is_file() and (viewer / "data.js").is_file()
    assert len(list((viewer / "audio").iterdir())) == 42


def test_viewer_of_the_trained_run_in_chromium(doc2vec_run: Path, browser):
    """The trained run's viewer, opened from disk: every clip drawn, a click plays the clip
    and lists its neighbours, colouring by distance to it changes the colours."""
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((doc2vec_run / "eval" / "viewer" / "index.html").resolve().as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    assert page.evaluate("viewer.pointCount") == 42
    at = page.evaluate("i => viewer.screenPosition(i)", 5)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
    assert page.evaluate("viewer.selected") == 5
    page.wait_for_function("() => document.getElementById('selected-audio').readyState > 0")
    assert page.locator("#neighbours li").count() == 10
    before = [page.evaluate("i => viewer.colourOf(i)", i) for i in range(42)]
    page.select_option("#colour-by", "distance")
    after = [page.evaluate("i => viewer.colourOf(i)", i) for i in range(42)]
    assert sum(b != a for b, a in zip(before, after)) > 21
    assert errors == []
    page.close()


def test_a_trained_model_scored_on_other_data(doc2vec_run: Path, audio_root: Path):
    """evaluate.py run=<dir> data=<other data>: here the same folder cut to two classes."""
    from omegaconf import OmegaConf

    from audiorep.tasks.evaluate import evaluate_run

    other = audio_root.parent / "other"
    for kind in CLASSES[:2]:
        (other / kind).mkdir(parents=True, exist_ok=True)
        for wav in sorted((audio_root / kind).glob("*.wav"))[:8]:
            (other / kind / wav.name).write_bytes(wav.read_bytes())
    data_cfg = OmegaConf.create(
        {
            "_target_": "audiorep.data.audio_folder.AudioFolderDataModule",
            "root": str(other),
            "data_dir": str(doc2vec_run.parent / "data"),
            "preprocess_workers": 0,
        }
    )
    eval_cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "eval" / "default.yaml")
    eval_cfg.figures.enabled = False
    eval_cfg.protocol.baselines = []
    metrics = evaluate_run(doc2vec_run, eval_cfg, log_to_wandb=False, data_cfg=data_cfg)
    assert metrics["label/classes"] == ["buzz", "sine"]
    out = doc2vec_run / "eval" / "AudioFolderDataModule-other"
    assert np.load(out / "embeddings.npz")["embeddings"].shape == (16, 96)
