"""Progress for long jobs: a bar on a terminal, periodic log lines otherwise (CI logs, services, files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("shipdet")


class Progress(Generic[T]):
    """Iterates `items`, showing done/total, rate and time left; `note` adds a figure of the job's own (tiles/s
    of a re-scoring run, whose scenes differ in size) to the bar or the next log line."""

    def __init__(self, items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
                 log_every_s: float = 30.0) -> None:
        self.items, self.desc, self.total, self.unit, self.log_every_s = items, desc, total, unit, log_every_s
        self._note = ""
        self._bar: tqdm[T] | None = None

    def note(self, text: str) -> None:
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def __iter__(self) -> Iterator[T]:
        if sys.stderr.isatty():
            with tqdm(self.items, desc=self.desc, total=self.total, unit=self.unit, dynamic_ncols=True) as bar:
                self._bar = bar
                yield from bar
            return
        start = last = time.monotonic()
        done = 0
        for item in self.items:
            yield item
            done += 1
            now = time.monotonic()
            if now - last >= self.log_every_s:
                rate = done / (now - start)
                left = f", {((self.total - done) / rate):.0f} s left" if self.total and rate > 0 else ""
                note = f", {self._note}" if self._note else ""
                log.info("%s: %d%s %s (%.2f %s/s%s%s)", self.desc, done, f"/{self.total}" if self.total else "",
                         self.unit, rate, self.unit, left, note)
                last = now
        log.info("%s: %d %s in %.1f s%s", self.desc, done, self.unit, time.monotonic() - start,
                 f" ({self._note})" if self._note else "")


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
             log_every_s: float = 30.0) -> Progress[T]:
    return Progress(items, desc, total, unit, log_every_s)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
