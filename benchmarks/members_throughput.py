"""What dynamics members cost: dream steps per second and training batches, in one run, to results/throughput_members.json.

    python benchmarks/members_throughput.py            # ~2.5 minutes on 2 CPU cores

DreamVectorEnv with 1024 envs of a CarRacing-shaped pixel model (default preset: z=32, LSTM 256, K=5,
randomly initialised: throughput does not depend on the weights) with 1 member, 5 ensemble members
and 5 dropout members (with uncertainty_penalty and uncertainty_limit on, so the env's own work is
counted), against the real CarRacing-v3 measured in the same run; and the time of one MDN-RNN training
batch (forward + backward + Adam) at CartPole's default fit sizes (LSTM 256, K=5, 16 windows x 32
steps) for each form. Each configuration runs in its own subprocess with one torch thread; ratios
are against measurements of the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

FORMS = {"1 member": dict(members=1), "5 ensemble members": dict(members=5), "5 dropout members (p=0.1)": dict(members=5, dropout=0.1)}
CONFIGS = [("real CarRacing-v3", "real")] + [(f"DreamVectorEnv x1024 (CarRacing-shaped), {f}", f"dream:{f}") for f in FORMS] + [
    (f"training batch (CartPole sizes), {f}", f"train:{f}") for f in FORMS]


def _pixel_model(form: str):
    import gymnasium as gym
    import numpy as np
    import torch

    from gym_dream.models import MDNRNN
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), bank_size=64, **FORMS[form])
    m.card = {"env": {"id": "CarRacing-v3"}, "uncertainty": {"reward_min": -100.0, "heldout_disagreement": {"quantiles": {"99": 1e9}}}}
    return m.eval().requires_grad_(False)


def measure(spec: str, seconds: float) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch

    import gym_dream

    torch.set_num_threads(1)
    kind, _, form = spec.partition(":")
    if kind == "real":
        env = gym.make("CarRacing-v3")
        env.reset(seed=0)
        env.action_space.seed(0)
        batch = 1

        def run():
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            if term or trunc:
                env.reset()
    elif kind == "dream":
        model = _pixel_model(form)
        extra = dict(uncertainty_penalty=0.1, uncertainty_limit="q99") if model.members > 1 else {}
        venv = gym.make_vec("Dream-CarRacing-v0", num_envs=1024, vectorization_mode="vector_entry_point", model=model, tau=1.15, **extra)
        venv.reset(seed=0)
        venv.action_space.seed(0)
        actions = [venv.action_space.sample() for _ in range(16)]
        batch, i = 1024, [0]

        def run():
            venv.step(actions[i[0] % 16])
            i[0] += 1
    else:
        from gym_dream.models import MDNRNN
        from gym_dream.preprocessing import Preprocessing

        cp = gym.make("CartPole-v1")
        kw = FORMS[form]
        m = MDNRNN(cp.observation_space, cp.action_space, Preprocessing("vector"), hidden=256, mixtures=5, head_hidden=64, residual=True, **kw)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lead = (kw["members"],) if kw["members"] > 1 else ()  # every member its own windows, as gym-dream fit does
        g = torch.Generator().manual_seed(0)
        z = torch.randn(*lead, 16, 33, 4, generator=g)
        a = torch.randint(0, 2, (*lead, 16, 32), generator=g)
        r, d, mk = torch.ones(*lead, 16, 32), torch.zeros(*lead, 16, 32, dtype=torch.bool), torch.ones(*lead, 16, 32)
        batch = 1

        def run():
            out = m.sequence_loss(z, a, r, d, mk)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
    for _ in range(2):
        run()  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    elapsed = time.perf_counter() - start
    return {"steps_per_s": calls * batch / elapsed, "ms_per_call": 1000 * elapsed / calls, "calls": calls, "batch": batch, "seconds": elapsed}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=12.0)
    a = p.parse_args()
    if a.one:
        print(json.dumps(measure(a.one, a.seconds)))
        return
    import torch

    load_at_start = os.getloadavg()
    rows = []
    for label, spec in CONFIGS:
        r = subprocess.run([sys.executable, __file__, "--one", spec, "--seconds", str(a.seconds)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"})
        if r.returncode != 0:
            print(f"{label}: FAILED\n{r.stderr[-2000:]}", file=sys.stderr)
            rows.append({"label": label, "spec": spec, "error": (r.stderr.strip().splitlines() or ["failed"])[-1]})
            continue
        res = {"label": label, "spec": spec, **json.loads(r.stdout.strip().splitlines()[-1])}
        rows.append(res)
        print(f"{label:70s} {res['steps_per_s']:>12,.1f} /s   {res['ms_per_call']:9.2f} ms per call", flush=True)
    by = {r["spec"]: r for r in rows if "steps_per_s" in r}
    ratios = {}
    for f in FORMS:
        d = by.get(f"dream:{f}")
        if d and by.get("real"):
            ratios[f"DreamVectorEnv x1024, {f} / real CarRacing-v3 (steps per second)"] = d["steps_per_s"] / by["real"]["steps_per_s"]
        if d and by.get("dream:1 member") and f != "1 member":
            ratios[f"dream step cost, {f} / 1 member"] = by["dream:1 member"]["steps_per_s"] / d["steps_per_s"]
        t = by.get(f"train:{f}")
        if t and by.get("train:1 member") and f != "1 member":
            ratios[f"training batch cost, {f} / 1 member"] = t["ms_per_call"] / by["train:1 member"]["ms_per_call"]
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} (1 thread per configuration)",
           "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(), "command": "python benchmarks/members_throughput.py",
           "seconds_per_config": a.seconds, "rows": rows, "ratios": ratios}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput_members.json").write_text(json.dumps(out, indent=2) + "\n")
    for k, v in ratios.items():
        print(f"{k}: {v:,.2f}x")


if __name__ == "__main__":
    main()
