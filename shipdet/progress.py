"""Progress for long jobs: a bar on a terminal, periodic log lines otherwise (CI logs, services, files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("shipdet")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
             log_every_s: float = 30.0) -> Iterator[T]:
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True)
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= log_every_s:
            rate = done / (now - start)
            left = f", {((total - done) / rate):.0f} s left" if total and rate > 0 else ""
            log.info("%s: %d%s %s (%.2f %s/s%s)", desc, done, f"/{total}" if total else "", unit, rate, unit, left)
            last = now
    log.info("%s: %d %s in %.1f s", desc, done, unit, time.monotonic() - start)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
