"""Toy dataset: grid counts, the on-disk cache, splits and the ground-truth interface."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from audiorep.audio.synthesis import render_additive
from audiorep.data import toy_synth
from audiorep.data.toy_synth import ToySynthDataModule, count_items, grid_axis

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"

SMALL = {
    "f0": {"start": 100.0, "stop": 400.0, "step": 100.0},
    "slope": {"start": -0.1, "stop": -0.9, "step": -0.4},
    "inharmonicity": {"start": 0.0, "stop": 0.2, "step": 0.1},
    "decay": {"start": 0.0, "stop": 4.0, "step": 2.0},
}
SMALL_KW = dict(factors=SMALL, sample_rate=8000, duration=0.25, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def small_dm(tmp_path_factory: pytest.TempPathFactory) -> ToySynthDataModule:
    dm = ToySynthDataModule(tmp_path_factory.mktemp("data"), **SMALL_KW)
    dm.prepare_data()
    dm.setup()
    return dm


class RenderCounter:
    """Wraps render_toy_sounds to count how many sounds get rendered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls = 0
        original = toy_synth.render_toy_sounds

        def counting(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(toy_synth, "render_toy_sounds", counting)


# -- grids --------------------------------------------------------------------------


def test_default_grid_has_20691_items_without_rendering() -> None:
    assert count_items(None) == 20691
    conf = OmegaConf.load(CONF / "toy_synth.yaml")
    assert count_items(conf.factors) == 19 * 9 * 11 * 11 == 20691
    small = OmegaConf.load(CONF / "toy_synth_small.yaml")
    assert count_items(small.factors) == 4 * 3 * 3 * 3


def test_float_endpoints_are_kept() -> None:
    slope = grid_axis({"start": -0.1, "stop": -0.9, "step": -0.1}, "k")
    assert len(slope) == 9 and slope[-1] == -0.9 and slope[2] == -0.3
    inh = grid_axis({"start": 0.0, "stop": 1.0, "step": 0.1}, "k")
    assert len(inh) == 11 and inh[-1] == 1.0 and inh[3] == 0.3
    # A step that does not divide the range stops before `stop`, never past it.
    assert grid_axis({"start": 0.0, "stop": 1.0, "step": 0.6}, "k").tolist() == [0.0, 0.6]
    assert grid_axis([440, 220], "k").tolist() == [440.0, 220.0]


def test_optional_factors_extend_the_grid(tmp_path: Path) -> None:
    dm = ToySynthDataModule(
        tmp_path,
        **{
            **SMALL_KW,
            "factors": {**SMALL, "harmonics": ["all", "odd", "even"], "snr_db": [10, 20]},
        },
    )
    assert dm.factor_names == ["f0", "slope", "inharmonicity", "decay", "harmonics", "snr_db"]
    assert dm.factor_sizes == [4, 3, 3, 3, 3, 2]
    assert dm.factor_labels == {"harmonics": ["all", "odd", "even"]}
    assert dm.factor_values[4].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"decay": {"start": -1.0, "stop": 2.0, "step": 1.0}}, "data.factors.decay"),
        ({"f0": {"start": 500.0, "stop": 100.0, "step": 100.0}}, "data.factors.f0"),
        ({"slope": {"start": -0.1, "stop": -0.9, "step": 0.0}}, "data.factors.slope"),
        (
            {"f0": {"start": 1000.0, "stop": 4000.0, "step": 1000.0}},
            "data.factors.f0",
        ),  # Nyquist 4 kHz
        ({"harmonics": ["all", "square"]}, "data.factors.harmonics"),
        ({"inharmonicity": None}, "data.factors.inharmonicity"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, change: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        ToySynthDataModule(tmp_path, **{**SMALL_KW, "factors": {**SMALL, **change}})


# -- cache ------------------------------------------------------------------------------


def test_cache_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = RenderCounter(monkeypatch)
    dm = ToySynthDataModule(tmp_path, **SMALL_KW)
    dm.prepare_data()
    assert counter.calls > 0
    array = dm.cache_dir / "audio.npy"
    mtime = array.stat().st_mtime_ns
    manifest = json.loads((dm.cache_dir / "manifest.json").read_text())
    assert manifest["num_items"] == 108 and manifest["shape"] == [108, 2000]
    assert manifest["files"]["audio.npy"]["checksum"].startswith("blake2b:")
    assert manifest["config"]["synth_version"] == toy_synth.SYNTH_VERSION

    counter.calls = 0
    again = ToySynthDataModule(tmp_path, **SMALL_KW)
    again.prepare_data()
    again.setup()
    assert counter.calls == 0 and array.stat().st_mtime_ns == mtime
    assert not list(dm.cache_dir.glob("*.tmp"))


def test_changed_config_gets_its_own_cache(tmp_path: Path) -> None:
    a = ToySynthDataModule(tmp_path, **SMALL_KW)
    b = ToySynthDataModule(tmp_path, **{**SMALL_KW, "duration": 0.3})
    c = ToySynthDataModule(
        tmp_path, **{**SMALL_KW, "seed": 5, "batch_size": 3}
    )  # splits/loading only
    assert a.cache_dir != b.cache_dir
    assert a.cache_dir == c.cache_dir


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 4000)


def _flip_byte(path: Path) -> None:
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def _drop_manifest(path: Path) -> None:
    (path.parent / "manifest.json").unlink()


def _edit_manifest_config(path: Path) -> None:
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["n_partials"] = 3
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", [_truncate, _flip_byte, _drop_manifest, _edit_manifest_config])
def test_damaged_cache_is_detected_and_regenerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage
) -> None:
    dm = ToySynthDataModule(tmp_path, **SMALL_KW)
    dm.prepare_data()
    array = dm.cache_dir / "audio.npy"
    good = np.load(array).copy()
    damage(array)

    counter = RenderCounter(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="audiorep.data.toy_synth"):
        ToySynthDataModule(tmp_path, **SMALL_KW).prepare_data()
    assert counter.calls > 0
    assert "regenerating" in caplog.text
    np.testing.assert_array_equal(np.load(array), good)


# -- data module ---------------------------------------------------------------------


def test_splits_are_sized_disjoint_and_seeded(small_dm: ToySynthDataModule, tmp_path: Path) -> None:
    parts = [small_dm.train_set.indices, small_dm.val_set.indices, small_dm.test_set.indices]
    assert [len(p) for p in parts] == [86, 11, 11]
    assert sorted(np.concatenate(parts).tolist()) == list(range(108))
    same = ToySynthDataModule(small_dm.data_dir, **SMALL_KW)
    same.setup()
    assert np.array_equal(same.val_set.indices, small_dm.val_set.indices)
    other = ToySynthDataModule(small_dm.data_dir, **{**SMALL_KW, "seed": 1})
    other.setup()
    assert not np.array_equal(other.val_set.indices, small_dm.val_set.indices)


def test_batches(small_dm: ToySynthDataModule) -> None:
    batch = next(iter(small_dm.train_dataloader()))
    assert batch["audio"].shape == (16, 2000) and batch["audio"].dtype == torch.float32
    assert batch["factors"].shape == (16, 4) and batch["factor_index"].dtype == torch.int64
    assert batch["audio"].abs().max() <= 1.0
    values = np.stack([small_dm.factor_values[j][batch["factor_index"][:, j]] for j in range(4)], 1)
    np.testing.assert_allclose(batch["factors"].numpy(), values, rtol=1e-6)
    assert small_dm.num_samples == 2000 and small_dm.sample_rate == 8000
    assert small_dm.input_key == "audio"
    json.dumps(small_dm.describe())


def test_ground_truth_interface_matches_rerendered_sounds(small_dm: ToySynthDataModule) -> None:
    idx = small_dm.sample_factors(5, np.random.default_rng(0))
    assert idx.shape == (5, 4) and idx.dtype == np.int64
    obs = small_dm.observations_from_factors(idx)
    assert obs.shape == (5, 2000) and obs.dtype == np.float32
    values = [small_dm.factor_values[j][idx[:, j]] for j in range(4)]
    again = render_additive(*values, sample_rate=8000, duration=0.25)
    np.testing.assert_allclose(obs, again, atol=1e-6)
    # Dataset items agree with the interface for the same flat index.
    item = small_dm.val_set[0]
    obs_item = small_dm.observations_from_factors(item["factor_index"][None].numpy())
    np.testing.assert_array_equal(item["audio"].numpy(), obs_item[0])


def test_noisy_factor_rerenders_identically(tmp_path: Path) -> None:
    factors = {**SMALL, "f0": [200.0, 300.0], "snr_db": [5.0, 20.0]}
    dm = ToySynthDataModule(tmp_path, **{**SMALL_KW, "factors": factors})
    dm.prepare_data()
    idx = dm.sample_factors(4, np.random.default_rng(1))
    flat = dm.grid.flat_index(idx)
    np.testing.assert_allclose(
        dm.observations_from_factors(idx),
        toy_synth.render_toy_sounds(dm.config, dm.grid, flat),
        atol=1e-6,
    )


def test_dataset_pickles_for_workers(small_dm: ToySynthDataModule) -> None:
    ds = small_dm.train_set
    first = ds[0]["audio"]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._audio is None
    assert torch.equal(clone[0]["audio"], first)


def test_batched_fetch_matches_item_by_item(small_dm: ToySynthDataModule) -> None:
    dataset = small_dm.train_set
    positions = [5, 0, 3, 3]
    batch = dataset.__getitems__(positions)
    for row, position in enumerate(positions):
        item = dataset[position]
        for key in ("audio", "factors", "factor_index", "clip_index"):
            assert torch.equal(batch[key][row], item[key]), key
