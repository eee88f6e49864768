"""Steps per second of real-env collection (``gym-dream collect``), local backend vs Ray, at 1, 2, ... workers, in one run
on one machine, written to results/scaling.json (results/scaling.md has the story).

    python benchmarks/scaling.py                                   # CarRacing-v3, 1 and 2 workers (~8 minutes on 2 cores)
    ray start --head --num-cpus 16 && python benchmarks/scaling.py --ray-address auto --workers 1 2 4 8 16

Each (backend, workers) run collects ``--episodes-per-worker`` x ``workers`` episodes of the recipe's collecting
policy into a fresh folder, timing the whole ``collect()`` call, right after a start-up run that collects one step per
worker (envs or actors made, one step, the folder written, all torn down). The runs go round by round (``--repeats``):
in each round every backend and worker count once, so a change in the machine's load hits all of them alike, and the
ratios (Ray vs local, 2 workers vs 1) are taken within a round, then their median over rounds. Ray's overhead per
episode is its seconds per episode (the run's time less its start-up, over its episodes) less the local backend's at
the same workers, in the same round. The load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GYM_DREAM_PROGRESS", "0")

from trainers.data.collect import CollectConfig, collect
from trainers.infra.provenance import provenance


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="CarRacing-v3")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--episodes-per-worker", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="rounds")
    p.add_argument("--backends", nargs="+", default=["local", "ray"])
    p.add_argument("--ray-address", default=None, help="a running Ray cluster (default: a Ray started here with this machine's CPUs)")
    p.add_argument("--out", default="results/scaling.json")
    args = p.parse_args()

    if "ray" in args.backends:
        import ray

        if args.ray_address:
            ray.init(address=args.ray_address)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="scaling-"))
    runs = []

    def run(backend: str, workers: int, **target) -> float:
        out = work / "run"
        cfg = CollectConfig(env_id=args.env_id, out=str(out), workers=workers, seed=0, backend=backend, ray_address=args.ray_address,
                            **target)
        start = time.perf_counter()
        summary = collect(cfg)
        seconds = time.perf_counter() - start
        shutil.rmtree(out)
        return summary, seconds

    try:
        for round_ in range(args.repeats):
            for workers in args.workers:
                for backend in args.backends:
                    _, startup = run(backend, workers, steps=workers, episodes=None)
                    summary, seconds = run(backend, workers, steps=None, episodes=args.episodes_per_worker * workers)
                    r = {"round": round_, "backend": backend, "workers": workers, "episodes": summary["episodes"], "steps": summary["steps"],
                         "seconds": round(seconds, 2), "startup_seconds": round(startup, 2), "steps_per_second": round(summary["steps"] / seconds, 1),
                         "seconds_per_episode": round((seconds - startup) / summary["episodes"], 4)}
                    print(json.dumps(r), flush=True)
                    runs.append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def find(round_, backend, workers):
        return next((r for r in runs if (r["round"], r["backend"], r["workers"]) == (round_, backend, workers)), None)

    rows = []
    for workers in args.workers:
        for backend in args.backends:
            mine = [r for r in runs if r["backend"] == backend and r["workers"] == workers]
            row = {"backend": backend, "workers": workers, "rounds": len(mine),
                   **{k: round(float(np.median([r[k] for r in mine])), n) for k, n in (("steps_per_second", 1), ("startup_seconds", 2),
                                                                          ("seconds_per_episode", 4))}}
            if backend != "local" and "local" in args.backends:
                pairs = [(r, find(r["round"], "local", workers)) for r in mine]
                row["rate_vs_local"] = round(float(np.median([r["steps_per_second"] / l["steps_per_second"] for r, l in pairs])), 3)
                row["overhead_seconds_per_episode"] = round(float(np.median([r["seconds_per_episode"] - l["seconds_per_episode"] for r, l in pairs])), 4)
            if workers != 1 and 1 in args.workers:
                row["rate_vs_1_worker"] = round(float(np.median([r["steps_per_second"] / find(r["round"], backend, 1)["steps_per_second"] for r in mine])), 3)
            rows.append(row)
    result = {"env_id": args.env_id, "command": " ".join(["python", "benchmarks/scaling.py", *sys.argv[1:]]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()]},
              "ray_address": args.ray_address or "a local Ray started by the script", "runs": runs, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**result, "provenance": provenance()}, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
