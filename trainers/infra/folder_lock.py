"""One writer per folder: a dataset, a CMA-ES or SB3 run, a fit's checkpoints, a PlaNet loop.

Every long job here resumes by re-running its command, so a second copy started by mistake (a duplicated terminal,
a scheduler retrying a job that is still alive) would resume the same folder and interleave its checkpoints and logs
with the first's. Each job holds an OS lock on its folder for as long as it runs; the OS releases it at any exit,
``kill -9`` included, so a killed job never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from gym_dream.error import FolderBusy


def lock_file(job: str) -> str:
    """The lock file's name in a folder written by ``job`` (``collect`` keeps the name datasets always had)."""
    return f".{job.split()[0]}.lock"


def hold_folder(folder: str | Path, job: str, error: type[FolderBusy] = FolderBusy) -> IO:
    """Lock ``folder`` (created if missing) for this process as the gym-dream ``job`` writing it; returns the handle
    that holds the lock (closing it releases it). Raises ``error`` naming the fix when another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / lock_file(job), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise error(f"Another gym-dream {job} is writing to {folder}: let it finish (or stop it), then re-run this command "
                    "to continue from where it stands.") from None
    return handle


@contextmanager
def held(folder: str | Path, job: str) -> Iterator[None]:
    """``with held(out, "train cmaes"):`` the body is the only gym-dream ``job`` writing ``out``."""
    handle = hold_folder(folder, job)
    try:
        yield
    finally:
        handle.close()
