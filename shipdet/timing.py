"""Timing on a shared machine: paths timed in turns, so that load which comes and goes falls on all alike."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time several paths in rotation (a, b, c, a, b, c, ...), each call's seconds per path: the ratios of their
    medians are what the benchmarks and the INT8 check quote."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - start)
    return out
