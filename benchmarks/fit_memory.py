"""Peak memory of a refit that keeps its VAE, against the dataset's frames: does the fit hold every frame?

Runs ``gym-dream fit DATA --family mdnrnn --init MODEL --vae-epochs 0 ...`` in a child process and reads its peak resident memory
(``ru_maxrss``), then, in another child, only reads every frame of the same dataset into memory (``EpisodeDataset.obs``,
what a fit held before it encoded file by file), for the first N episodes at each of ``--sizes``. The first should
not grow with the frames; the second does.

    gym-dream collect --env-id VizdoomTakeCover-v1 --out data/doom-mem --episodes 200 --steps none --workers 1 --seed 12
    python benchmarks/fit_memory.py data/doom-mem --init doom-takecover --sizes 50 100 200 --out results/fit_memory \\
        --fit-args "--z-dim 64 --hidden 512 --mixtures 5 --head-hidden 64 --vae-channels 32 64 128 256 --seq-len 128 --rnn-epochs 1 --threads 2"
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trainers.infra.provenance import provenance



def _peak_of(cmd: list[str]) -> tuple[int, float]:
    """(peak resident bytes, seconds) of ``cmd`` run as a child; each call runs in its own helper process so that
    ``RUSAGE_CHILDREN`` counts that command alone."""
    probe = ("import resource, subprocess, sys, time, json; t = time.time(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, time.time() - t]))")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout
    peak, seconds = json.loads(out.strip().splitlines()[-1])
    return int(peak), float(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("--init", required=True, help="the model whose VAE the refit keeps (a name or a directory)")
    p.add_argument("--fit-args", default="--rnn-epochs 1", help="more arguments of gym-dream fit (sizes must match --init)")
    p.add_argument("--sizes", type=int, nargs="+", default=[None], help="the first N episodes of DATA, one row per N")
    p.add_argument("--out", required=True, help="report path without extension (.json is written)")
    a = p.parse_args()
    from trainers.data.dataset import EpisodeDataset

    rows = []
    for size in a.sizes:
        ds = EpisodeDataset(a.data, max_episodes=size)
        frame_bytes = int(ds.observations * np.prod(ds.frame[0]) * ds.frame[1].itemsize)
        cut = [] if size is None else ["--max-episodes", str(size)]
        with tempfile.TemporaryDirectory() as tmp:
            fit_cmd = [str(Path(sys.executable).with_name("gym-dream")), "fit", a.data, "--out", f"{tmp}/model", "--family", "mdnrnn",
                       "--init", a.init, "--vae-epochs", "0", *cut, *shlex.split(a.fit_args)]
            fit_peak, fit_seconds = _peak_of(fit_cmd)
        read_cmd = [sys.executable, "-c", "from trainers.data.dataset import EpisodeDataset; "
                    f"EpisodeDataset({a.data!r}, max_episodes={size!r}).obs"]
        read_peak, read_seconds = _peak_of(read_cmd)
        rows.append({"episodes": len(ds), "observations": ds.observations, "frames_bytes": frame_bytes,
                     "refit_keeping_the_vae": {"command": shlex.join(["gym-dream", *fit_cmd[1:4], "MODEL", *fit_cmd[5:]]),
                                               "peak_rss_bytes": fit_peak, "seconds": round(fit_seconds, 1)},
                     "reading_every_frame": {"peak_rss_bytes": read_peak, "seconds": round(read_seconds, 1)}})
        gib = 2**30
        print(f"{len(ds)} episodes, {ds.observations} frames ({frame_bytes / gib:.2f} GiB): the refit's peak {fit_peak / gib:.2f} GiB, "
              f"reading every frame {read_peak / gib:.2f} GiB", flush=True)
    report = {"data": a.data, "rows": rows, "date": time.strftime("%Y-%m-%d", time.gmtime())}
    Path(a.out).with_suffix(".json").write_text(json.dumps({**report, "provenance": provenance()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
