"""Steps per second of real envs vs dreams, and the latencies around them, in one run on one machine, written to
results/throughput.{json,png}.

    python benchmarks/throughput.py                     # ~6 minutes on 2 CPU cores (5 s per row)
    python benchmarks/throughput.py --seconds 3 --threads 2

Each row runs in its own subprocess (so its peak memory and thread setting are its own) with ``--threads`` torch
threads (default 1: on this 2-core machine, shared with background jobs, one thread per process is the fastest
setting; the row "2 torch threads" shows what the second costs). Rows:

* the original ones: real CartPole-v1 / CarRacing-v3, DreamEnv, a Python loop of DreamEnvs, DreamVectorEnv at
  1..4096 envs of a CarRacing-shaped pixel model (default preset, randomly initialised) and of the shipped CartPole;
* the shipped CarRacing model (``gym.make_vec("Dream-CarRacing-v0", ...)``) at 1024 envs, fp32 and
  ``precision="bfloat16"``, and the same model's bare batched ``imagine`` with no env around it (the limit);
* the arithmetic rate of that step (matrix-product FLOPs counted by ``torch.utils.flop_counter``) against this CPU's
  measured GEMM peak (a 2048^3 product, fp32 and bf16, same threads, same run) and its nominal peak;
* dynamics members (the former benchmarks/members_throughput.py): 1 member, 5 ensemble members and 5 dropout
  members at 1024 envs with the uncertainty penalty and limit on, and one training batch of each form;
* the CEM planner (trainers/planning/cem.py) on an RSSM of PlaNet's sizes (200/30/200, randomly initialised: the latency
  does not depend on the weights) at the ``planet`` (12 x 10 x 1000) and ``cpu`` presets: seconds per decision;
* one CMA-ES generation (trainers/agents/cmaes.py's ``dream_returns``: 64 candidates x 16 rollouts, at most 1000 steps)
  in the shipped CarRacing dream;
* DreamObservation on the real CarRacing-v3: the wrapper's added time per real step (its time minus the real
  env's, measured inside the same loop);
* GPU rows (dream steps per second at 16k and 64k envs) on CUDA when a GPU is present, else "not measured, no GPU";
* ``precision="float32"``, ``"bfloat16"`` and ``"auto"`` on the shipped CarRacing dream x1024, timed alternately in one
  process, next to this CPU's capability (``torch.backends.cpu.get_cpu_capability()`` and whether it has bf16 dot
  products, which is what ``"auto"`` asks): bf16 is fast only on CPUs with AVX-512 BF16 or AMX (and GPUs), and
  ``"auto"`` should run as fast as the faster of the two. The JSON's ``cpu_capability`` records the same for the run.
  ``python benchmarks/throughput.py --only precision --seconds 20`` runs that row alone.

Every target is a ratio or a latency against a reference measured in the same run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from throughput_rows import MEMBER_FORMS, runner  # the workload of each row (benchmarks/ is on the path)
from throughput_summary import nominal_peak, plot, summarise  # the ratios, the targets and the figure

from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "results"


PAIRS = {  # target rows: two configurations timed alternately in one process, a / b
    "shipped CarRacing x1024 (fp32) vs real CarRacing-v3": "pair:vector:shipped:1024|real:CarRacing-v3",
    "shipped CarRacing x1024 (bfloat16) vs real CarRacing-v3": "pair:vector:shipped:1024:bfloat16|real:CarRacing-v3",
    "bare model.imagine x1024 vs DreamVectorEnv x1024, shipped CarRacing (fp32)": "pair:bare:shipped:1024|vector:shipped:1024",
    "bare model.imagine x1024 vs DreamVectorEnv x1024, shipped CarRacing (bfloat16)": "pair:bare:shipped:1024:bfloat16|vector:shipped:1024:bfloat16",
    "bare model.imagine x1024 (fp32) vs GEMM 2048^3 fp32 (measured peak)": "pair:bare:shipped:1024|gemm:float32",
    "bare model.imagine x1024 (bfloat16) vs GEMM 2048^3 bf16 (measured peak)": "pair:bare:shipped:1024:bfloat16|gemm:bfloat16",
    "DreamVectorEnv x1024 (CarRacing-shaped), 1 member vs 5 ensemble members": "pair:members:1 member|members:5 ensemble members",
    "DreamVectorEnv x1024 (CarRacing-shaped), 1 member vs 5 dropout members (p=0.1)": "pair:members:1 member|members:5 dropout members (p=0.1)",
}

CONFIGS = [
    ("real CartPole-v1", "real:CartPole-v1"),
    ("real CarRacing-v3", "real:CarRacing-v3"),
    ("DreamEnv CartPole", "single:cartpole"),
    ("DreamEnv CarRacing-shaped", "single:pixel"),
    ("Python loop over 1024 DreamEnvs (CarRacing-shaped)", "loop:pixel:1024"),
] + [(f"DreamVectorEnv x{n} (CarRacing-shaped)", f"vector:pixel:{n}") for n in (1, 64, 1024, 4096)] + [
    ("DreamVectorEnv x1024 (CartPole)", "vector:cartpole:1024"),
    ("DreamVectorEnv x1024 (shipped CarRacing)", "vector:shipped:1024"),
    ("DreamVectorEnv x1024 (shipped CarRacing), 2 torch threads", "vector:shipped:1024:t2"),
] + list(PAIRS.items()) + [
    (f"training batch (CartPole sizes), {f}", f"train:{f}") for f in MEMBER_FORMS] + [
    ("CEM-MPC decision, planet preset (12 x 10 x 1000), RSSM 200/30/200: fp32 vs bfloat16", "pair:planner:planet|planner:planet:bfloat16"),
    ("CEM-MPC decision, cpu preset (12 x 5 x 250), RSSM 200/30/200: fp32 vs bfloat16", "pair:planner:cpu|planner:cpu:bfloat16"),
    ("one CMA-ES generation, 64 x 16 rollouts x <=1000 steps (shipped CarRacing)", "cmaes:float32"),
    ("one CMA-ES generation, 64 x 16 rollouts x <=1000 steps (shipped CarRacing), bfloat16", "cmaes:bfloat16"),
    ("DreamObservation on real CarRacing-v3 (added time per real step)", "dreamobs:CarRacing-v3"),
    ("DreamVectorEnv x1024 (shipped CarRacing): float32 vs bfloat16 vs auto, timed alternately", "precision:shipped:1024"),
    ("GPU: DreamVectorEnv x16384 (shipped CarRacing)", "gpu:16384"),
    ("GPU: DreamVectorEnv x65536 (shipped CarRacing)", "gpu:65536"),
]


def _timed(run, seconds: float, batch: int, min_calls: int = 1, warm: bool = True) -> dict:
    if warm:
        run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < min_calls:
        run()
        calls += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": calls * batch / elapsed, "ms_per_call": 1000 * elapsed / calls, "calls": calls, "batch": batch, "seconds": elapsed}


def _with_rate(res: dict, info: dict) -> dict:
    out = {**res, **info}
    if "matmul_flops_per_env_step" in info:
        out["gflop_per_s"] = info["matmul_flops_per_env_step"] * res["steps_per_s"] / 1e9
    return out


def measure(spec: str, seconds: float, threads: int) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch

    import gym_dream  # noqa: F401

    kind, *rest = spec.split(":")
    if rest and rest[-1].startswith("t") and rest[-1][1:].isdigit():
        threads = int(rest.pop()[1:])
        spec = ":".join([kind, *rest])
    torch.set_num_threads(threads)
    out = {"threads": threads}
    if kind == "gpu" and not torch.cuda.is_available():
        return {**out, "not_measured": "not measured, no GPU"}
    if kind == "pair":
        # two configurations in one process, timed alternately in ``rounds`` rounds: their ratio sees the same load
        a_spec, b_spec = spec[len("pair:"):].split("|")
        runners = [runner(a_spec), runner(b_spec)]
        rounds = 4
        times = [[], []]
        for run, _, _ in runners:
            run()  # warm-up
        for _ in range(rounds):
            for k, (run, batch, _) in enumerate(runners):
                times[k].append(_timed(run, seconds / rounds, batch, warm=False))
        per_round = [times[0][r]["steps_per_s"] / times[1][r]["steps_per_s"] for r in range(rounds)]
        merged = []
        for k, (_, _, info) in enumerate(runners):
            calls, el = sum(t["calls"] for t in times[k]), sum(t["seconds"] for t in times[k])
            batch = runners[k][1]
            merged.append(_with_rate({"steps_per_s": calls * batch / el, "ms_per_call": 1000 * el / calls, "calls": calls, "batch": batch,
                                      "seconds": el}, info()))
        return {**out, "a": {"spec": a_spec, **merged[0]}, "b": {"spec": b_spec, **merged[1]},
                "ratio_a_over_b": float(np.median(per_round)), "ratio_per_round": per_round, "rounds": rounds}
    if kind == "precision":
        # the three precisions on one dream, timed alternately in ``rounds`` rounds (they see the same load), with the
        # CPU capability that "auto" reads
        from gym_dream.envs.precision import cpu_capability

        name, n_envs = rest[0], int(rest[1])
        precisions = ("float32", "bfloat16", "auto")
        runners = {p: runner(f"vector:{name}:{n_envs}:{p}") for p in precisions}
        rounds, times = 4, {p: [] for p in precisions}
        for run, _, _ in runners.values():
            run()  # warm-up
        for _ in range(rounds):
            for p, (run, batch, _) in runners.items():
                times[p].append(_timed(run, seconds / rounds / len(precisions), batch, warm=False))
        rows = {}
        for p, (_, batch, info) in runners.items():
            calls, el = sum(t["calls"] for t in times[p]), sum(t["seconds"] for t in times[p])
            rows[p] = {"steps_per_s": calls * batch / el, "ms_per_call": 1000 * el / calls, "calls": calls, "batch": batch, "seconds": el,
                       **info()}
        return {**out, **cpu_capability(), "precisions": rows, "auto_runs": rows["auto"]["precision"],
                "bfloat16_over_float32": rows["bfloat16"]["steps_per_s"] / rows["float32"]["steps_per_s"],
                "auto_over_float32": rows["auto"]["steps_per_s"] / rows["float32"]["steps_per_s"]}
    if kind in ("real", "single", "loop", "vector", "gpu", "bare", "gemm", "members", "train", "planner"):
        run, batch, info = runner(spec)
        return {**out, **_with_rate(_timed(run, seconds, batch), info())}
    if kind == "cmaes":
        from trainers.agents.cmaes import dream_returns
        from trainers.agents.controller import LinearController
        from trainers.evaluation.rollout import make_dream_vec

        kw = {"precision": rest[0]} if rest[0] != "float32" else {}
        venv = make_dream_vec("Dream-CarRacing-v0", 64 * 16, None, 1.15, "cpu", **kw)
        feature_dim = venv.single_observation_space.shape[0]
        n_params = LinearController(feature_dim, venv.single_action_space).num_params
        params = np.repeat(np.random.default_rng(0).normal(0, 0.1, (64, n_params)), 16, axis=0)
        venv.reset(seed=0)
        steps = [0]
        inner = venv.step

        def counting_step(a):
            steps[0] += 1
            return inner(a)
        venv.step = counting_step
        start = time.perf_counter()
        returns = dream_returns(venv, params, feature_dim, 1000)
        elapsed = time.perf_counter() - start
        return {**out, "latency_s": elapsed, "seconds": elapsed, "dream_steps": steps[0], "mean_return": float(returns.mean()),
                "steps_per_s": steps[0] * 1024 / elapsed}
    if kind == "dreamobs":
        from gym_dream.wrappers import DreamObservation

        real = gym.make(rest[0])
        inner_time = [0.0]
        step = real.step

        def timed_step(a):
            t = time.perf_counter()
            r = step(a)
            inner_time[0] += time.perf_counter() - t
            return r
        real.step = timed_step
        env = DreamObservation(real, model="carracing")
        env.reset(seed=0)
        env.action_space.seed(0)
        for _ in range(5):
            env.step(env.action_space.sample())
        # only the wrapper's step is timed (not the action draw, not the real env's resets between episodes)
        inner_time[0], wrapped, calls, start = 0.0, 0.0, 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            action = env.action_space.sample()
            t = time.perf_counter()
            done = any(env.step(action)[2:4])
            wrapped += time.perf_counter() - t
            calls += 1
            if done:
                env.reset()
        return {**out, "calls": calls, "seconds": wrapped, "ms_per_call": 1000 * wrapped / calls, "real_ms_per_step": 1000 * inner_time[0] / calls,
                "added_ms_per_step": 1000 * (wrapped - inner_time[0]) / calls, "steps_per_s": calls / wrapped}
    raise ValueError(f"unknown spec {spec!r}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    p.add_argument("--threads", type=int, default=1, help="torch threads per row (rows ending in :t2 use 2)")
    p.add_argument("--only", nargs="*", help="run only the rows whose spec starts with one of these (the json then holds only them)")
    p.add_argument("--out", default=str(RESULTS / "throughput.json"), help="the JSON to write (the figure goes beside it, .png)")
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(a.one, a.seconds, a.threads)))
        return
    import torch

    from gym_dream.envs.precision import cpu_capability

    load_at_start = os.getloadavg()
    rows = []
    configs = [c for c in CONFIGS if not a.only or c[1].startswith(tuple(a.only))]
    for label, spec in configs:
        r = subprocess.run([sys.executable, __file__, "--one", spec, "--seconds", str(a.seconds), "--threads", str(a.threads)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"})
        if r.returncode != 0:
            print(f"{label}: FAILED\n{r.stderr[-2000:]}", file=sys.stderr)
            rows.append({"label": label, "spec": spec, "error": (r.stderr.strip().splitlines() or ["failed"])[-1]})
            continue
        res = {"label": label, "spec": spec, **json.loads(r.stdout.strip().splitlines()[-1])}
        rows.append(res)
        if "not_measured" in res:
            print(f"{label:80s} {res['not_measured']}", flush=True)
        elif "ratio_a_over_b" in res:
            extra = "".join(f"   {k}: {res[k]['steps_per_s']:,.1f}/s" + (f" {res[k]['gflop_per_s']:.1f} GFLOP/s" if "gflop_per_s" in res[k] else "") for k in "ab")
            print(f"{label:80s} a/b = {res['ratio_a_over_b']:,.3f}{extra}", flush=True)
        elif "latency_s" in res:
            print(f"{label:80s} {res['latency_s']:10.3f} s", flush=True)
        elif "precisions" in res:
            rates = "   ".join(f"{k}: {v['steps_per_s']:,.0f}/s" for k, v in res["precisions"].items())
            print(f"{label:80s} {rates}   (CPU {res['torch_cpu_capability']}, bf16 dot products: {res['bf16_dot_products']}; "
                  f"auto runs {res['auto_runs']})", flush=True)
        elif "added_ms_per_step" in res:
            print(f"{label:80s} {res['added_ms_per_step']:10.3f} ms added (real step {res['real_ms_per_step']:.2f} ms)", flush=True)
        else:
            extra = f"   {res['gflop_per_s']:.1f} GFLOP/s" if "gflop_per_s" in res else ""
            print(f"{label:80s} {res['steps_per_s']:>14,.1f} /s   peak RSS {res.get('peak_rss_mb', 0) or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB{extra}",
                  flush=True)
    nominal = nominal_peak()
    summary = summarise(rows, nominal, PAIRS)
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"machine": f"{cpu}, {platform.machine()}, {os.cpu_count()} CPUs (shared with background training jobs), "
                      f"torch {torch.__version__}, {a.threads} torch thread(s) per row unless the row says otherwise; "
                      f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
           "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
           "command": "python benchmarks/throughput.py" + (f" --seconds {a.seconds:g}" if a.seconds != 5.0 else "") + (f" --threads {a.threads}" if a.threads != 1 else "")
                      + (f" --only {' '.join(a.only)}" if a.only else "") + (f" --out {a.out}" if Path(a.out) != RESULTS / "throughput.json" else ""),
           "commit": _commit(),
           "seconds_per_config": a.seconds, "nominal_peak": nominal, "cpu_capability": cpu_capability(), "rows": rows, **summary}
    out_path = Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({**out, "provenance": provenance(out["command"])}, indent=2) + "\n")
    for k, v in summary["ratios"].items():
        print(f"{k}: {v:,.2f}x")
    for k, v in summary["targets"].items():
        print(f"TARGET {k}: {'n/a' if v is None else v if isinstance(v, str) else f'{v:,.3f}'}")
    plot(rows, summary, out_path.with_suffix(".png"))


def _commit() -> str | None:
    """The commit the benchmark ran at (None outside a git checkout)."""
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() or None if r.returncode == 0 else None


if __name__ == "__main__":
    main()
