"""Progress of long jobs: a tqdm bar on a terminal, plain lines elsewhere (CI logs, ``nohup``, a pipe).

``GYM_DREAM_PROGRESS``: ``auto`` (default) a bar when stderr is a terminal, else a plain line every
:data:`PLAIN_PERCENT` percent or :data:`PLAIN_SECONDS` seconds, whichever comes first; ``plain`` always plain
lines; ``0`` nothing at all (CI sets it); any other value (``1``) always a bar. ``disable=False`` asks for a bar.
"""

from __future__ import annotations

import os
import sys
import time

#: a plain line each time the job passes another this many percent of its total
PLAIN_PERCENT = 5.0
#: ... and at least this often (also for jobs without a known total)
PLAIN_SECONDS = 30.0


class PlainProgress:
    """What a tqdm bar shows, as separate lines that read well in a log file: ``desc: n/total unit (p%), t s, postfix``."""

    def __init__(self, total=None, desc: str = "", unit: str = "it", initial: int = 0, file=None,
                 percent: float = PLAIN_PERCENT, seconds: float = PLAIN_SECONDS):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file = file if file is not None else sys.stderr
        self.percent, self.seconds = percent, seconds
        self.start = self._last_time = time.monotonic()
        self._last_step = self._step(initial)
        self._postfix = ""
        self._closed = False
        self._printed_n = None

    def _step(self, n) -> int:
        return int(100.0 * n / self.total // self.percent) if self.total else 0

    def update(self, n=1) -> None:
        self.n += n
        now = time.monotonic()
        step = self._step(self.n)
        if step > self._last_step or now - self._last_time >= self.seconds:
            self._last_step, self._last_time = step, now
            self._print(now)

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self._postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str = "", refresh=True) -> None:
        self.desc = desc

    def _print(self, now: float | None = None) -> None:
        elapsed = (time.monotonic() if now is None else now) - self.start
        done = f"{self.n}/{self.total} {self.unit} ({100.0 * self.n / self.total:.0f}%)" if self.total else f"{self.n} {self.unit}"
        line = f"{self.desc}: {done}, {elapsed:.0f} s" + (f", {self._postfix}" if self._postfix else "")
        print(line, file=self.file, flush=True)
        self._printed_n = self.n

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._printed_n != self.n:  # the last state, once
                self._print()

    def refresh(self) -> None:
        pass

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total=None, desc: str = "", unit: str = "it", initial: int = 0, disable: bool | None = None):
    """A progress bar (``update``, ``set_postfix``, ``close``) as ``GYM_DREAM_PROGRESS`` says (module docstring)."""
    from tqdm.auto import tqdm

    mode = os.environ.get("GYM_DREAM_PROGRESS", "auto")
    if disable or (disable is None and mode == "0"):
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=True)
    if disable is None and (mode == "plain" or (mode == "auto" and not sys.stderr.isatty())):
        return PlainProgress(total=total, desc=desc, unit=unit, initial=initial)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=False, dynamic_ncols=True, mininterval=1.0)
