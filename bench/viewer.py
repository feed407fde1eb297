"""Benchmark: the embedding viewer for 20,000 clips, built and then opened in headless chromium.

Build: UMAP and t-SNE (cosine, as the viewer computes them) are timed one by one, then
the rest of the build (k-means, audio copies, encoding) with those maps given; the
build time is their sum. Page: time to first render (from navigation until the frame
after the first draw, as the page records it), and redraw after a colour change, both
synchronously (drawing finished, forced by a one-pixel read) and until the next frame.
The reference is the naive way, measured in the same browser: one SVG <circle> per
point, built and then recoloured. The last line printed is a JSON object.

    python bench/viewer.py [--clips 20000] [--dim 128] [--projections umap tsne]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from audiorep.evaluation.projections import PROJECTIONS, project_2d
from audiorep.viewer.build import DATA_FILE, build_viewer
from audiorep.viewer.testing import CHROMIUM_ARGS, chromium_executable, make_clips

FIRST_RENDER_GOAL_MS, REDRAW_GOAL_MS = 2000.0, 100.0
VIEWPORT = {"width": 1400, "height": 900}

# The naive reference: one SVG circle per point, coloured by label, then recoloured.
SVG_REFERENCE = """async ([points, labels, palette]) => {
    const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const ns = 'http://www.w3.org/2000/svg';
    const t0 = performance.now();
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', 1040); svg.setAttribute('height', 860);
    const circles = [];
    for (let i = 0; i < labels.length; i++) {
        const c = document.createElementNS(ns, 'circle');
        c.setAttribute('cx', points[2 * i]); c.setAttribute('cy', points[2 * i + 1]);
        c.setAttribute('r', 1.5); c.setAttribute('fill', palette[labels[i] % palette.length]);
        svg.appendChild(c); circles.push(c);
    }
    document.body.appendChild(svg);
    await frame();
    const first = performance.now() - t0;
    const recolours = [];
    for (let k = 1; k <= 3; k++) {
        const t1 = performance.now();
        for (let i = 0; i < circles.length; i++) {
            circles[i].setAttribute('fill', palette[(labels[i] + k) % palette.length]);
        }
        await frame();
        recolours.push(performance.now() - t1);
    }
    return [first, recolours];
}"""


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def timed_build(
    arrays: dict[str, np.ndarray], out: Path, args: argparse.Namespace
) -> tuple[dict[str, float], Path]:
    """Each projection timed alone, then the rest of the build with those maps given."""
    seconds = {}
    for method in args.projections:
        start = time.perf_counter()
        arrays[f"projection:{method}"] = project_2d(
            arrays["embeddings"], method, seed=0, metric="cosine"
        )
        seconds[method] = time.perf_counter() - start
        print(f"build    : {method:<5} {seconds[method]:7.1f} s")
    start = time.perf_counter()
    index = build_viewer(arrays, out, max_audio=args.max_audio, projections=args.projections)
    seconds["rest"] = time.perf_counter() - start
    return seconds, index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=128, help="embedding size")
    parser.add_argument("--max-audio", type=int, default=500, help="clips with audio")
    parser.add_argument("--projections", nargs="+", default=list(PROJECTIONS), choices=PROJECTIONS)
    parser.add_argument("--repeats", type=int, default=5, help="page loads and redraws timed")
    parser.add_argument("--out", help="keep the viewer folder here (default: a temporary one)")
    parser.add_argument(
        "--threads", type=int, help="limit BLAS/OpenMP threads (t-SNE, k-means) to this many"
    )
    args = parser.parse_args()

    executable = chromium_executable()
    if executable is None:
        raise SystemExit("bench/viewer.py: no chromium; apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        arrays = make_clips(args.clips, args.dim, tmp / "src", n_audio=args.max_audio)
        arrays["audio_path"][args.max_audio :] = ""  # the rest have no audio file
        print(f"{args.clips} synthetic clips, {args.dim}-D embeddings, {args.max_audio} with audio")

        out = Path(args.out) if args.out else tmp / "viewer"
        with threadpool_limits(args.threads) if args.threads else contextlib.nullcontext():
            seconds, index = timed_build(arrays, out, args)
        total = sum(seconds.values())
        data_mb = (out / DATA_FILE).stat().st_size / 1e6
        print(
            f"build    : rest  {seconds['rest']:7.1f} s (k-means, audio, encoding; data.js {data_mb:.1f} MB)"
        )
        print(f"build    : total {total:7.1f} s")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            first_render, wall = [], []
            for _ in range(args.repeats):
                page = browser.new_page(viewport=VIEWPORT)
                start = time.perf_counter()
                page.goto(index.resolve().as_uri())
                page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                wall.append(1000 * (time.perf_counter() - start))
                first_render.append(page.evaluate("viewer.timings.firstRenderMs"))
                page.close()

            page = browser.new_page(viewport=VIEWPORT)
            page.goto(index.resolve().as_uri())
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            columns = page.evaluate(
                "Array.from(document.querySelectorAll('#colour-by option'), o => o.textContent)"
            )
            keys = [c for c in columns if not c.startswith("distance")] + ["distance"]
            distance_ms = []
            for i in range(args.repeats):
                page.evaluate("i => viewer.select(i)", i * 997 % args.clips)
                distance_ms.append(page.evaluate("viewer.timings.lastDistanceMs"))
            redraw, redraw_frame = [], []
            for _ in range(args.repeats):
                for key in keys:
                    redraw.append(page.evaluate("k => viewer.measureRedraw(k)", key))
                    redraw_frame.append(page.evaluate("k => viewer.measureRedrawFrame(k)", key))
            pan = [page.evaluate("viewer.measurePan(7, 5)") for _ in range(5 * args.repeats)]
            page.close()

            # The reference draws the same map (fitted to the same area) as SVG circles.
            points = arrays[f"projection:{args.projections[0]}"].astype(np.float64)
            points = (points - points.min(0)) / np.ptp(points, axis=0) * 800 + 20
            labels = np.unique(arrays["meta:label"], return_inverse=True)[1]
            palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948"]
            svg_first, svg_recolour = [], []
            for _ in range(args.repeats):
                page = browser.new_page(viewport=VIEWPORT)
                first, recolours = page.evaluate(
                    SVG_REFERENCE, [points.ravel().round(2).tolist(), labels.tolist(), palette]
                )
                svg_first.append(first)
                svg_recolour.extend(recolours)
                page.close()
            browser.close()

    figures = {
        "first_render_ms": median(first_render),
        "open_wall_ms": median(wall),
        "redraw_ms": median(redraw),
        "redraw_max_ms": max(redraw),
        "redraw_frame_ms": median(redraw_frame),
        "pan_ms": median(pan),
        "distance_ms": median(distance_ms),
        "svg_first_render_ms": median(svg_first),
        "svg_recolour_frame_ms": median(svg_recolour),
    }
    f = figures
    print(
        f"page     : first render {f['first_render_ms']:.0f} ms from navigation, data loading "
        f"included (goal {FIRST_RENDER_GOAL_MS:.0f} ms: {f['first_render_ms'] / FIRST_RENDER_GOAL_MS:.2f}x "
        f"of it); goto -> ready {f['open_wall_ms']:.0f} ms"
    )
    print(
        f"page     : redraw after a colour change {f['redraw_ms']:.1f} ms median "
        f"({f['redraw_max_ms']:.1f} max), {f['redraw_frame_ms']:.1f} ms to the next frame "
        f"(goal {REDRAW_GOAL_MS:.0f} ms: {f['redraw_frame_ms'] / REDRAW_GOAL_MS:.2f}x of it)"
    )
    print(
        f"reference: SVG circle per point: first frame {f['svg_first_render_ms']:.0f} ms for the "
        f"points alone ({f['svg_first_render_ms'] / f['redraw_frame_ms']:.1f}x the canvas's "
        f"redraw to frame); recolour {f['svg_recolour_frame_ms']:.0f} ms to the next frame "
        f"({f['svg_recolour_frame_ms'] / f['redraw_frame_ms']:.1f}x the canvas's)"
    )
    print(
        f"page     : pan redraw {f['pan_ms']:.1f} ms; full-space cosine distances "
        f"to one clip {f['distance_ms']:.1f} ms ({args.clips} x {args.dim})"
    )
    print(
        json.dumps(
            {
                "clips": args.clips,
                "dim": args.dim,
                **{f"build_{k}_seconds": round(v, 2) for k, v in seconds.items()},
                "build_total_seconds": round(total, 2),
                "data_js_mb": round(data_mb, 2),
                **{k: round(v, 1) for k, v in figures.items()},
                "goal_first_render_under_2s": f["first_render_ms"] < FIRST_RENDER_GOAL_MS,
                "goal_redraw_under_100ms": f["redraw_frame_ms"] < REDRAW_GOAL_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
