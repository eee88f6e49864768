"""Steps per second of real envs vs dreams, in one run on one machine, written to results/throughput.{json,png}.

    python benchmarks/throughput.py            # ~3 minutes on 2 CPU cores

Each configuration runs in its own subprocess (so its peak memory is its own). Dreams use the
shipped CartPole model and a CarRacing-shaped pixel model at the default preset (z=32, LSTM 256, K=5,
randomly initialised: throughput does not depend on the weights). Ratios are against the real env
measured in the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

CONFIGS = [
    ("real CartPole-v1", "real:CartPole-v1"),
    ("real CarRacing-v3", "real:CarRacing-v3"),
    ("DreamEnv CartPole", "single:cartpole"),
    ("DreamEnv CarRacing-shaped", "single:pixel"),
    ("Python loop over 1024 DreamEnvs (CarRacing-shaped)", "loop:pixel:1024"),
] + [(f"DreamVectorEnv x{n} (CarRacing-shaped)", f"vector:pixel:{n}") for n in (1, 64, 1024, 4096)] + [
    (f"DreamVectorEnv x{n} (CartPole)", f"vector:cartpole:{n}") for n in (1024,)
]


def _pixel_model():
    import gymnasium as gym
    import numpy as np
    import torch

    from gym_dream.models import MDNRNN
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), bank_size=64)
    m.card = {"env": {"id": "CarRacing-v3"}}
    return m.eval().requires_grad_(False)


def _model(name):
    return "cartpole" if name == "cartpole" else _pixel_model()


def _dream_id(name):
    return "Dream-CartPole-v0" if name == "cartpole" else "Dream-CarRacing-v0"


def measure(spec: str, seconds: float) -> dict:
    import gymnasium as gym
    import numpy as np

    import gym_dream

    kind, *rest = spec.split(":")
    rng = np.random.default_rng(0)
    if kind == "real":
        env = gym.make(rest[0])
        env.reset(seed=0)
        env.action_space.seed(0)
        step = lambda: env.step(env.action_space.sample())[2:4]
        batch = 1
        def run(n):
            for _ in range(n):
                term, trunc = step()
                if term or trunc:
                    env.reset()
    elif kind == "single":
        env = gym.make(_dream_id(rest[0]), model=_model(rest[0]), max_episode_steps=1000)
        env.reset(seed=0)
        env.action_space.seed(0)
        batch = 1
        def run(n):
            for _ in range(n):
                _, _, term, trunc, _ = env.step(env.action_space.sample())
                if term or trunc:
                    env.reset()
    elif kind == "loop":
        model, n_envs = _model(rest[0]), int(rest[1])
        envs = [gym.make(_dream_id(rest[0]), model=model, max_episode_steps=1000) for _ in range(n_envs)]
        for i, e in enumerate(envs):
            e.reset(seed=i)
            e.action_space.seed(i)
        batch = n_envs
        def run(n):
            for _ in range(n):
                for e in envs:
                    _, _, term, trunc, _ = e.step(e.action_space.sample())
                    if term or trunc:
                        e.reset()
    else:
        n_envs = int(rest[1])
        venv = gym.make_vec(_dream_id(rest[0]), num_envs=n_envs, vectorization_mode="vector_entry_point", model=_model(rest[0]), tau=1.15)
        venv.reset(seed=0)
        venv.action_space.seed(0)
        actions = [venv.action_space.sample() for _ in range(16)]
        batch = n_envs
        def run(n):
            for i in range(n):
                venv.step(actions[i % 16])
    run(2)  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(1)
        calls += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": calls * batch / elapsed, "calls": calls, "batch": batch, "seconds": elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(a.one, a.seconds)))
        return
    import torch

    rows = []
    for label, spec in CONFIGS:
        r = subprocess.run([sys.executable, __file__, "--one", spec, "--seconds", str(a.seconds)], capture_output=True, text=True,
                           env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"})
        if r.returncode != 0:
            print(f"{label}: FAILED\n{r.stderr[-2000:]}", file=sys.stderr)
            rows.append({"label": label, "spec": spec, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"})
            continue
        res = {"label": label, "spec": spec, **json.loads(r.stdout.strip().splitlines()[-1])}
        rows.append(res)
        print(f"{label:55s} {res['steps_per_s']:>12,.0f} steps/s   peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)
    by = {r["spec"]: r.get("steps_per_s") for r in rows}
    ratios = {}
    if by.get("real:CarRacing-v3") and by.get("vector:pixel:1024"):
        ratios["DreamVectorEnv x1024 / real CarRacing-v3"] = by["vector:pixel:1024"] / by["real:CarRacing-v3"]
    if by.get("loop:pixel:1024") and by.get("vector:pixel:1024"):
        ratios["DreamVectorEnv x1024 / Python loop over 1024 DreamEnvs"] = by["vector:pixel:1024"] / by["loop:pixel:1024"]
    if by.get("real:CartPole-v1") and by.get("vector:cartpole:1024"):
        ratios["DreamVectorEnv x1024 (CartPole) / real CartPole-v1"] = by["vector:cartpole:1024"] / by["real:CartPole-v1"]
    out = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)",
           "command": "python benchmarks/throughput.py", "seconds_per_config": a.seconds, "rows": rows, "ratios": ratios}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(out, indent=2) + "\n")
    for k, v in ratios.items():
        print(f"{k}: {v:,.0f}x")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ok = [r for r in rows if "steps_per_s" in r]
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ax.barh([r["label"] for r in ok], [r["steps_per_s"] for r in ok], color=["#888" if r["spec"].startswith(("real", "loop")) else "#3a7" for r in ok])
        ax.set_xscale("log")
        ax.set_xlabel("steps per second (log scale)")
        ax.set_title("Dream vs real env throughput, one run, 2-core CPU")
        fig.tight_layout()
        fig.savefig(RESULTS / "throughput.png", dpi=110)
    except ImportError:
        pass


if __name__ == "__main__":
    main()
