"""What the data passes that fan work out to processes share: chunks of work, the
worker start method and the progress bar (toy synthesis, preprocessing, rendering).

Kept free of torch and Lightning imports, so worker processes start light.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from multiprocessing.context import BaseContext
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def worker_context() -> BaseContext:
    """fork where there is one (Linux, as torch's DataLoader workers): workers start at
    once and need not re-import the caller's __main__, which spawn and forkserver do and
    which fails for code run from stdin or a notebook."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def progress_bar(enabled: bool, label: str = "{task.description}") -> Progress:
    """A rich bar with the count done and the time left; ``label`` names the pass."""
    columns = [TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn()]
    return Progress(*columns, TimeRemainingColumn(), disable=not enabled)
