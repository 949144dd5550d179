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
    of a re-scoring run, whose scenes differ in size) to the bar or the next log line, and with `live=True` shows
    it at once (a long item's inner progress: the windows of a large scene)."""

    def __init__(self, items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
                 log_every_s: float = 30.0) -> None:
        self.items, self.desc, self.total, self.unit, self.log_every_s = items, desc, total, unit, log_every_s
        self._note = ""
        self._bar: tqdm[T] | None = None
        self._start = self._last = time.monotonic()
        self._done = 0

    def note(self, text: str, live: bool = False) -> None:
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=live)
        elif live and time.monotonic() - self._last >= self.log_every_s:
            self._log_line()

    def __iter__(self) -> Iterator[T]:
        if sys.stderr.isatty():
            from tqdm.contrib.logging import logging_redirect_tqdm

            # Log lines while the bar runs are written above it, not through it.
            with logging_redirect_tqdm(), tqdm(self.items, desc=self.desc, total=self.total, unit=self.unit,
                                               dynamic_ncols=True) as bar:
                self._bar = bar
                yield from bar
            return
        self._start = self._last = time.monotonic()
        for item in self.items:
            yield item
            self._done += 1
            if time.monotonic() - self._last >= self.log_every_s:
                self._log_line()
        log.info("%s: %s in %.1f s%s", self.desc, plural(self._done, self.unit), time.monotonic() - self._start,
                 f" ({self._note})" if self._note else "")

    def _log_line(self) -> None:
        now = time.monotonic()
        rate = self._done / max(now - self._start, 1e-9)
        left = f", {((self.total - self._done) / rate):.0f} s left" if self.total and rate > 0 else ""
        note = f", {self._note}" if self._note else ""
        of = f" of {self.total:,}" if self.total else ""
        log.info("%s: %s%s (%.2f a second%s%s)", self.desc, plural(self._done, self.unit), of, rate, left, note)
        self._last = now


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it",
             log_every_s: float = 30.0) -> Progress[T]:
    return Progress(items, desc, total, unit, log_every_s)


def setup_logging(verbose: bool = False) -> None:
    """shipdet's own messages from INFO up; other libraries' only from WARNING up (their INFO chatter is not the
    user's business) unless --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("shipdet").setLevel(logging.DEBUG if verbose else logging.INFO)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """`1 scene`, `3 scenes`, `no scenes`: counts said in words a person would write."""
    if count == 0:
        return f"no {plural_form or noun + 's'}"
    return f"{count:,} {noun if count == 1 else (plural_form or noun + 's')}"
