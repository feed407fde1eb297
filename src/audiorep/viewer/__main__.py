"""``python -m audiorep.viewer <run dir or embeddings.npz> --out <folder>``: build the viewer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from audiorep.evaluation.projections import PROJECTIONS
from audiorep.viewer.build import build_viewer, resolve_embeddings_path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m audiorep.viewer",
        description="Build the interactive embedding viewer (open its index.html from disk).",
    )
    parser.add_argument("source", help="a run directory (its eval/embeddings.npz) or an .npz file")
    parser.add_argument(
        "--out", help="folder to write (default: a 'viewer' folder beside the embeddings file)"
    )
    parser.add_argument("--max-audio", type=int, default=500, help="clips copied (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="projections, k-means and sampling")
    parser.add_argument("--projections", nargs="+", default=list(PROJECTIONS), choices=PROJECTIONS)
    parser.add_argument(
        "--kmeans", type=int, default=None, help="k-means clusters (default 8; 0: none)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    embeddings = resolve_embeddings_path(args.source)
    out = Path(args.out) if args.out else embeddings.parent / "viewer"
    index = build_viewer(
        embeddings,
        out,
        max_audio=args.max_audio,
        projections=args.projections,
        seed=args.seed,
        kmeans_clusters=args.kmeans,
    )
    print(f"viewer: open {index.resolve().as_uri()}")
    return index


if __name__ == "__main__":
    main()
