"""Static interactive embedding viewer: a folder that opens from disk, no server needed."""

from audiorep.viewer.build import build_viewer, load_viewer_input

__all__ = ["build_viewer", "load_viewer_input"]
