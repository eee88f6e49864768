"""Training you can watch: one row of scalars per epoch / update block / generation, to a CSV always and
to TensorBoard when it is installed.

```python
with TrainingLog(ckpt_dir, "mdnrnn") as log:           # <ckpt_dir>/mdnrnn_log.csv, <ckpt_dir>/tb/mdnrnn/
    for epoch in range(start, epochs):
        ...
        log.write(epoch + 1, train_loss=train, val_loss=val)
```

The CSV (``<directory>/<name>_log.csv``) has the columns ``step``, ``wall_time`` (Unix seconds) and the
scalars, in the order they first appeared; its header is written once and each row is flushed as it is
written, so ``tail -f`` shows a job as it runs and a kill loses at most the row being written. A resumed
run appends to the same file; pass ``resume_from`` (the step its checkpoint holds) to drop the rows a
killed run logged after its last checkpoint, so that no step appears twice. A scalar that first appears
in a later row extends the header (the file is rewritten once, atomically).

TensorBoard event files go under ``<directory>/tb/<name>`` (``tensorboard --logdir <directory>/tb``) when
``torch.utils.tensorboard`` imports (``pip install tensorboard``); otherwise only the CSV is written.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any

from gym_dream.checkpoint import atomic_write_bytes


def _summary_writer(log_dir: Path):
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard absent (ImportError) or broken: the CSV is the log
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"TrainingLog.write: {name}={value!r} is not a number; log scalars only (float, int, bool or a 0-d tensor).") from None


class TrainingLog:
    """Append-only log of training scalars: ``<directory>/<name>_log.csv`` and TensorBoard ``<directory>/tb/<name>``.

    Use as a context manager (or call :meth:`close`). ``tensorboard``: None (default) writes event files
    when tensorboard is importable and skips them silently otherwise; False never writes them.
    ``resume_from``: the step a resumed run continues from; rows logged with a larger step are dropped.
    """

    def __init__(self, directory: str | os.PathLike, name: str, *, tensorboard: bool | None = None, resume_from: int | None = None):
        if not name or any(c in name for c in "/\\"):
            raise ValueError(f"TrainingLog name must be a plain file-name stem like 'mdnrnn', got {name!r}.")
        self.directory = Path(directory)
        self.name = name
        self.path = self.directory / f"{name}_log.csv"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = []
        self._header_pending = True
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, newline="") as f:
                text = f.read()
            rows = list(csv.reader(text.splitlines()))
            if not rows or rows[0][:2] != ["step", "wall_time"]:
                from gym_dream.error import DataFormatError

                raise DataFormatError(f"{self.path} exists but is not a training log (its header is not 'step,wall_time,...'); "
                                      "move it away or log under another name.")
            self.columns, self._header_pending = rows[0][2:], False
            body = rows[1:]
            partial = not text.endswith("\n")  # a kill in the middle of a row: drop that row
            if partial:
                body = body[:-1]
            if resume_from is not None:
                body = [r for r in body if _row_step(r) <= resume_from]
            if partial or len(body) != len(rows) - 1:
                self._rewrite(body, self.columns)
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file)
        self._tb = _summary_writer(self.directory / "tb" / name) if tensorboard is not False else None
        if tensorboard and self._tb is None:
            self._file.close()
            from gym_dream.error import DependencyNotInstalled

            raise DependencyNotInstalled('TrainingLog(tensorboard=True) needs tensorboard: pip install tensorboard (or pass tensorboard=None to skip it).')

    @property
    def tensorboard_dir(self) -> Path | None:
        """Where the event files go, or None when tensorboard is not written."""
        return self.directory / "tb" / self.name if self._tb is not None else None

    def write(self, step: int, **scalars: Any) -> None:
        """Append one row: ``step`` (epoch, update or generation) and named scalars (numbers; NaN is kept)."""
        if self._file.closed:
            raise ValueError(f"TrainingLog {self.path} is closed.")
        step = int(step)
        values = {k: _number(k, v) for k, v in scalars.items()}
        new = [k for k in values if k not in self.columns]
        if new:
            if self._header_pending:
                self.columns = list(values)
                self._csv.writerow(["step", "wall_time", *self.columns])
                self._header_pending = False
            else:  # a scalar that was not there before: extend the header once
                self._file.close()
                with open(self.path, newline="") as f:
                    rows = list(csv.reader(f))[1:]
                self._rewrite(rows, self.columns + new)
                self.columns = self.columns + new
                self._file = open(self.path, "a", newline="")
                self._csv = csv.writer(self._file)
        now = time.time()
        self._csv.writerow([step, f"{now:.3f}", *(_fmt(values[k]) if k in values else "" for k in self.columns)])
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step, walltime=now)
            self._tb.flush()

    def _rewrite(self, rows: list[list[str]], columns: list[str]) -> None:
        width = 2 + len(columns)
        text = io.StringIO(newline="")
        w = csv.writer(text)
        w.writerow(["step", "wall_time", *columns])
        for r in rows:
            w.writerow(r + [""] * (width - len(r)))
        atomic_write_bytes(self.path, text.getvalue().encode())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> "TrainingLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrainingLog({str(self.directory)!r}, {self.name!r})"


def _row_step(row: list[str]) -> float:
    try:
        return int(row[0])
    except (IndexError, ValueError):
        return math.inf


def _fmt(v: float) -> str:
    return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def read_log(directory: str | os.PathLike, name: str) -> list[dict[str, float]]:
    """The rows of ``<directory>/<name>_log.csv`` as dicts of floats (empty cells left out)."""
    path = Path(directory) / f"{name}_log.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
