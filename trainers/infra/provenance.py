"""Where a result came from: the command, the commit, the machine and the date, recorded in every results JSON.

A number in results/ is only as good as the way back to what made it. :func:`provenance` returns the block a writer
adds to its JSON (``gym-dream evaluate --report`` adds it to every row; each maintained benchmark to its top level),
and ``benchmarks/results_index.py`` reads it back to show, next to each figure, the command that made it::

    {"command": "gym-dream evaluate runs/ppo/best --episodes 100 --report results/x",
     "commit": "1815dcf...", "machine": {"cpu": "Intel(R) Xeon(R) ...", "flags": ["avx2", "avx512f"],
     "cores": 2, "torch": "2.13.0", "threads": 1}, "date": "2025-01-31T12:00:00Z"}

``commit`` ends in ``-dirty`` when the work tree had uncommitted changes, and is ``None`` outside a git checkout.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CPU_FLAGS", "command_line", "git_commit", "machine", "provenance"]

#: the CPU flags that decide the speed of a torch CPU run (vector width, bf16 dot products, AMX tiles)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")

ROOT = Path(__file__).resolve().parents[2]


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user would type it again from the repository root: ``gym-dream ...`` for the CLI,
    ``python benchmarks/x.py ...`` for a script."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    prog = Path(argv[0])
    if prog.name == "gym-dream":
        head = "gym-dream"
    elif prog.suffix == ".py":
        try:
            head = "python " + str(prog.resolve().relative_to(ROOT))
        except ValueError:
            head = "python " + str(prog)
    elif prog.name in ("-c", "") or prog.name.startswith("pytest") or prog.name == "__main__.py":
        head = prog.name or "python"
    else:
        head = prog.name
    return " ".join([head, *(shlex.quote(a) for a in argv[1:])])


def git_commit(root: str | Path = ROOT) -> str | None:
    """``HEAD`` of the checkout at ``root``, with ``-dirty`` when tracked files differ from it; ``None`` without git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "") if sha else None


def machine() -> dict[str, Any]:
    """The CPU model, the speed-relevant CPU flags it has, its cores, and torch's version and thread count."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            cpu = value.strip()
        elif key.strip() == "flags":
            have = set(value.split())
            flags = [f for f in CPU_FLAGS if f in have]
            break
    out: dict[str, Any] = {"cpu": cpu, "flags": flags, "cores": os.cpu_count()}
    try:
        import torch

        out.update(torch=torch.__version__, threads=torch.get_num_threads())
    except ImportError:
        out.update(torch=None, threads=None)
    return out


def provenance(command: str | None = None) -> dict[str, Any]:
    """``{"command", "commit", "machine", "date"}`` of the running process (``command`` overrides ``sys.argv``)."""
    return {"command": command if command is not None else command_line(), "commit": git_commit(), "machine": machine(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
