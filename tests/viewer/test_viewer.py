"""The embedding viewer: its build (data, audio, escaping) and its page in headless chromium."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from audiorep.audio.io import read_wav, write_wav
from audiorep.viewer import build_viewer, load_viewer_input
from audiorep.viewer.__main__ import main as viewer_main
from audiorep.viewer.build import (
    AUDIO_COPIED,
    AUDIO_NOT_FOUND,
    AUDIO_NOT_SAMPLED,
    CLUSTER_COLUMN,
    DATA_GLOBAL,
    json_for_script,
    sample_evenly,
)
from audiorep.viewer.testing import make_clips

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=alert(1)>.wav"
N_CLIPS = 240


def read_payload(folder: Path) -> dict:
    text = (folder / "data.js").read_text(encoding="utf-8")
    prefix = f"window.{DATA_GLOBAL} = "
    assert text.startswith(prefix) and text.endswith(";\n")
    return json.loads(text[len(prefix) : -2])


def random_maps(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"projection:{m}": rng.normal(size=(n, 2)).astype(np.float32) for m in ("umap", "tsne")}


def test_json_for_script_keeps_hostile_text_as_data():
    hostile = {"name": "</script><script>alert(1)</script>", "x": HOSTILE + " & \u2028\u2029 é"}
    text = json_for_script(hostile)
    for forbidden in ("<", ">", "&", "\u2028", "\u2029"):
        assert forbidden not in text
    assert json.loads(text) == hostile


def test_sample_evenly_takes_each_label_in_turn():
    groups = np.array(["big"] * 100 + ["mid"] * 10 + ["small"] * 2)
    candidates = np.ones(len(groups), dtype=bool)
    candidates[:50] = False  # only 50 of the big group have audio
    chosen = sample_evenly(groups, candidates, 30, np.random.default_rng(0))
    assert len(chosen) == 30 and len(set(chosen.tolist())) == 30
    assert candidates[chosen].all()
    # Rounds 1-2 take one of each label, rounds 3-10 big and mid, the rest from big.
    labels, counts = np.unique(groups[chosen], return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist())) == {"big": 18, "mid": 10, "small": 2}
    everything = sample_evenly(groups, candidates, 1000, np.random.default_rng(0))
    np.testing.assert_array_equal(everything, np.flatnonzero(candidates))


def test_load_viewer_input_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate the run first"):
        load_viewer_input(tmp_path)
    good = {"embeddings": np.ones((3, 2)), "clip_id": np.array(["a", "b", "c"])}
    with pytest.raises(KeyError, match="'clip_id'"):
        load_viewer_input({"embeddings": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"'meta:label' has shape \(2,\)"):
        load_viewer_input({**good, "meta:label": np.array(["x", "y"])})
    with pytest.raises(ValueError, match="NaN"):
        load_viewer_input({**good, "embeddings": np.full((3, 2), np.nan)})
    npz = tmp_path / "objects.npz"
    np.savez(npz, embeddings=np.ones((3, 2)), clip_id=np.array(["a", "b", None], dtype=object))
    with pytest.raises(ValueError, match="unicode arrays"):
        load_viewer_input(npz)
    with pytest.raises(ValueError, match="too few to compute"):
        build_viewer(good, tmp_path / "three")
    with pytest.raises(ValueError, match="'pca' is not one of"):
        build_viewer(good, tmp_path / "three", projections=("pca",))
    loaded = load_viewer_input({**good, "projection:umap": np.zeros((3, 2))})
    assert loaded.audio_path.tolist() == ["", "", ""] and set(loaded.projections) == {"umap"}


def test_build_copies_audio_and_writes_the_data(tmp_path):
    arrays = {**make_clips(60, 8, tmp_path / "src", n_audio=50), **random_maps(60)}
    # Clip 0 as FLAC (transcoded to WAV), clip 1 missing on disk.
    audio, rate = read_wav(arrays["audio_path"][0])
    flac = tmp_path / "src" / "clip0.flac"
    sf.write(flac, audio, rate)
    arrays["audio_path"][0] = str(flac)
    arrays["audio_path"][1] = str(tmp_path / "gone.wav")
    out = tmp_path / "viewer"
    index = build_viewer(arrays, out, max_audio=100, kmeans_clusters=3)

    assert index == out / "index.html" and (out / "viewer.js").is_file()
    payload = read_payload(out)
    assert payload["count"] == 60 and payload["dim"] == 8
    status = np.frombuffer(base64.b64decode(payload["audioStatus"]), np.uint8)
    copied = [i for i, p in enumerate(payload["audio"]) if p]
    assert copied == [0, *range(2, 50)] and (status[copied] == AUDIO_COPIED).all()
    assert (status[[1, *range(50, 60)]] == AUDIO_NOT_FOUND).all()
    assert payload["audio"][0] == "audio/000000.wav"  # FLAC became WAV
    decoded, decoded_rate = read_wav(out / payload["audio"][0])
    assert decoded_rate == rate and np.abs(decoded - audio).max() < 1e-3
    assert (out / payload["audio"][2]).read_bytes() == Path(arrays["audio_path"][2]).read_bytes()

    columns = {c["name"]: c for c in payload["columns"]}
    assert set(columns) == {"label", "split", "fold", "speaker", CLUSTER_COLUMN}
    assert len(columns[CLUSTER_COLUMN]["values"]) == 3
    assert columns["fold"]["values"] == ["0", "1", "2", "3", "4"] and columns["fold"]["numeric"]
    assert payload["labelColumn"] == "label"
    # Unit vectors in float16, so the page's dot products are cosine similarities.
    vectors = np.frombuffer(base64.b64decode(payload["embeddings"]), "<f2")
    vectors = vectors.reshape(60, 8).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)

    # A rebuild replaces the old one: 5 clips of 5 different labels (6 labels in all).
    build_viewer(arrays, out, max_audio=5, kmeans_clusters=0)
    assert len(list((out / "audio").iterdir())) == 5
    payload = read_payload(out)
    status = np.frombuffer(base64.b64decode(payload["audioStatus"]), np.uint8)
    assert (status == AUDIO_NOT_SAMPLED).sum() == 49 - 5
    copied = [i for i, p in enumerate(payload["audio"]) if p]
    assert len(set(arrays["meta:label"][copied].tolist())) == 5
    assert CLUSTER_COLUMN not in {c["name"] for c in payload["columns"]}
    # A folder that is not a viewer is left alone.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a viewer folder"):
        build_viewer(arrays, tmp_path / "mine")


def test_command_line_reads_a_run_directory(tmp_path, capsys):
    arrays = {**make_clips(30, 4, tmp_path / "src", n_audio=3), **random_maps(30)}
    (tmp_path / "run" / "eval").mkdir(parents=True)
    np.savez(tmp_path / "run" / "eval" / "embeddings.npz", **arrays)
    index = viewer_main([str(tmp_path / "run"), "--max-audio", "2", "--projections", "umap"])
    assert index == tmp_path / "run" / "eval" / "viewer" / "index.html"
    payload = read_payload(index.parent)
    assert [p["key"] for p in payload["projections"]] == ["umap"]
    assert sum(1 for p in payload["audio"] if p) == 2
    assert index.resolve().as_uri() in capsys.readouterr().out


# ------------------------------------------------------------------ in the browser


@pytest.fixture(scope="module")
def viewer_dir(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A viewer over synthetic clips with REAL UMAP and t-SNE maps; clip 0 has a hostile name."""
    tmp = tmp_path_factory.mktemp("viewer")
    arrays = make_clips(N_CLIPS, 16, tmp / "src", n_audio=N_CLIPS)
    hostile_path = tmp / "src" / HOSTILE
    write_wav(hostile_path, read_wav(arrays["audio_path"][0])[0], 8000)
    # Through lists: numpy's fixed-width strings would cut the longer name.
    arrays["clip_id"] = np.array([HOSTILE, *arrays["clip_id"][1:].tolist()])
    arrays["audio_path"] = np.array([str(hostile_path), *arrays["audio_path"][1:].tolist()])
    # More values than the filter lists as checkboxes: it gets a "contains" box instead.
    arrays["meta:recording"] = np.array([f"rec{i:03d}" for i in range(N_CLIPS)])
    # One thread: on a busy machine OpenMP's spin-waits make t-SNE of 240 points take 10 s.
    with threadpool_limits(1):
        index = build_viewer(arrays, tmp / "out", max_audio=N_CLIPS, title="synthetic clips")
    return index.parent, arrays


@pytest.fixture
def page(browser, viewer_dir):
    """The viewer opened from disk; records dialogs, page errors and every request."""
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    page = context.new_page()
    page.dialogs, page.errors, page.requests = [], [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto((viewer_dir[0] / "index.html").resolve().as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    yield page
    assert page.errors == []
    context.close()


def click_clip(page, i: int) -> None:
    at = page.evaluate("i => viewer.screenPosition(i)", i)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])


def point_pixels(page) -> np.ndarray:
    """(N, 3) canvas colour at each clip's position."""
    return np.array(
        page.evaluate(
            """() => {
            const canvas = document.getElementById('map');
            const scale = canvas.width / canvas.getBoundingClientRect().width;
            const pixels = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            const out = [];
            for (let i = 0; i < viewer.pointCount; i++) {
                const p = viewer.screenPosition(i);
                const o = 4 * (Math.round(p.y * scale) * canvas.width + Math.round(p.x * scale));
                out.push([pixels[o], pixels[o + 1], pixels[o + 2]]);
            }
            return out;
        }"""
        )
    )


def test_page_plays_lists_neighbours_and_colours_by_distance(page, viewer_dir, tmp_path):
    folder, arrays = viewer_dir
    assert page.evaluate("viewer.pointCount") == N_CLIPS
    assert page.get_attribute("body", "data-point-count") == str(N_CLIPS)
    assert page.evaluate("viewer.colourBy") == "label"

    # The hostile clip: clicked on the map, it is selected, plays, and lists neighbours.
    click_clip(page, 0)
    assert page.evaluate("viewer.selected") == 0
    page.wait_for_function("() => document.getElementById('selected-audio').readyState > 0")
    assert page.locator("#selected-name").text_content() == HOSTILE
    assert page.locator("#neighbours li").count() == 10
    # Neighbours are the cosine nearest in the full space (float16 in the page).
    unit = arrays["embeddings"] / np.linalg.norm(arrays["embeddings"], axis=1, keepdims=True)
    distances = 1 - unit @ unit[0]
    expected = [j for j in np.argsort(distances, kind="stable") if j != 0][:10]
    found = page.evaluate("viewer.neighbours")
    assert len(set(found) & set(expected)) >= 9
    assert np.all(np.diff(distances[found]) >= -1e-3)
    texts = page.locator("#neighbours li .link").all_text_contents()
    assert texts == [arrays["clip_id"][j] for j in found]
    # A neighbour's play button plays it.
    page.locator("#neighbours li button.play").first.click()
    page.wait_for_function("() => document.getElementById('preview-audio').readyState > 0")

    before = point_pixels(page)
    page.select_option("#colour-by", "distance")
    assert page.evaluate("viewer.colourBy") == "distance"
    after = point_pixels(page)
    changed = np.any(before != after, axis=1)
    assert changed.mean() > 0.5
    assert len({tuple(c) for c in after.tolist()}) >= 10  # a gradient, not a few labels
    # Near clips dark, far clips light (viridis): the nearest neighbour is darker than the farthest.
    farthest = int(np.argmax(distances))
    near, far = (page.evaluate("i => viewer.colourOf(i)", i) for i in (found[0], farthest))
    assert sum(map(int, near[4:-1].split(","))) < sum(map(int, far[4:-1].split(",")))
    assert page.locator("#colour-bar").count() == 1

    # Hostile text stayed text: no dialog, no injected element, nothing fetched from outside.
    assert "<" not in (folder / "data.js").read_text(encoding="utf-8")
    assert page.dialogs == []
    assert page.locator("img").count() == 0
    assert all(url.startswith("file://") for url in page.requests)
    page.screenshot(path=str(tmp_path / "viewer.png"))
    assert (tmp_path / "viewer.png").stat().st_size > 10_000


def test_filter_search_hover_and_projection_switch(page, viewer_dir):
    _, arrays = viewer_dir
    labels = arrays["meta:label"]
    first_label = sorted(set(labels.tolist()))[0]

    page.locator("details.filter summary", has_text="label").click()
    page.locator(f"details.filter label:has-text('{first_label}') input").uncheck()
    assert page.evaluate("viewer.visibleCount") == N_CLIPS - int((labels == first_label).sum())
    assert "of 240 clips shown" in page.locator("#counts").text_content()
    page.locator("details.filter button", has_text="all").first.click()
    assert page.evaluate("viewer.visibleCount") == N_CLIPS

    page.locator("details.filter summary", has_text="recording").click()
    page.fill("details.filter input[type=search]", "rec00")
    assert page.evaluate("viewer.visibleCount") == 10
    page.fill("details.filter input[type=search]", "")
    assert page.evaluate("viewer.visibleCount") == N_CLIPS

    page.fill("#search", "onerror")
    assert page.evaluate("viewer.visibleCount") == 1
    assert page.locator("#search-results li").all_text_contents() == [HOSTILE]
    page.locator("#search-results button").click()
    assert page.evaluate("viewer.selected") == 0
    page.fill("#search", "")

    # Hover shows the file name and label; over empty space, nothing.
    at = page.evaluate("viewer.screenPosition(5)")
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + at["x"], box["y"] + at["y"])
    tooltip = page.locator("#tooltip")
    assert tooltip.is_visible()
    assert arrays["clip_id"][5] in tooltip.text_content()
    assert f"label: {labels[5]}" in tooltip.text_content()

    # Wheel zooms about the cursor (the point under it stays put), drag pans.
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(50)
    zoomed = page.evaluate("viewer.screenPosition(5)")
    assert abs(zoomed["x"] - at["x"]) < 1 and abs(zoomed["y"] - at["y"]) < 1
    other = page.evaluate("viewer.screenPosition(6)")
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + 65, box["y"] + 45, steps=4)
    page.mouse.up()
    panned = page.evaluate("viewer.screenPosition(6)")
    assert panned["x"] == pytest.approx(other["x"] + 60) and panned["y"] == pytest.approx(
        other["y"] + 40
    )

    umap_position = page.evaluate("viewer.screenPosition(5)")
    page.select_option("#projection", "tsne")
    assert page.evaluate("viewer.projection") == "tsne"
    assert page.evaluate("viewer.screenPosition(5)") != umap_position


def test_readme_screenshot(page):
    """Renders docs/viewer.png for the README: a selected clip, coloured by distance."""
    page.evaluate("viewer.select(3)")
    page.select_option("#colour-by", "distance")
    (ROOT / "docs").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "docs" / "viewer.png"))
    assert (ROOT / "docs" / "viewer.png").stat().st_size > 10_000
