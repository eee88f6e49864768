"""What one SAC gradient step costs on this machine, per network size and number of critics: the price of a replay
ratio (gradient steps per dreamed transition).

SB3's ``SAC.train`` timed on one torch thread (as each job of ``benchmarks/dream_temperature.py`` runs), on a replay
buffer filled from the dream itself, with the settings of the CarRacing SAC runs in results/trust.md (batch 256, gSDE):

    python benchmarks/ad_hoc/sac_update_cost.py --dream-id Dream-CarRacing-v0 --out results/runs/measurements/sac_update_cost

Writes OUT.json and OUT.md: milliseconds per gradient step (the median of ``--repeats`` timings of ``--steps`` steps).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SHAPES = [([400, 300], 5), ([400, 300], 2), ([256, 256], 5), ([64, 64], 5)]


def update_cost(dream_id: str, net_arch: list[int], n_critics: int, steps: int, repeats: int, batch_size: int = 256) -> float:
    """Median milliseconds per SAC gradient step with this actor/critic size, on a buffer of the dream's transitions."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    import gym_dream  # noqa: F401  (registers the Dream-* ids)

    torch.set_num_threads(1)
    env = gym.make(dream_id)
    agent = SAC("MlpPolicy", env, batch_size=batch_size, learning_starts=2 * batch_size, gradient_steps=0, use_sde=True, seed=0,
                policy_kwargs={"net_arch": net_arch, "n_critics": n_critics, "log_std_init": -3}, device="cpu")
    agent.learn(4 * batch_size)  # fills the buffer from the dream; gradient_steps=0: no update yet
    agent.train(gradient_steps=5, batch_size=batch_size)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        agent.train(gradient_steps=steps, batch_size=batch_size)
        times.append((time.perf_counter() - t0) / steps * 1000)
    env.close()
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dream-id", default="Dream-CarRacing-v0")
    p.add_argument("--steps", type=int, default=30, help="gradient steps per timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", required=True, help="report path without extension")
    a = p.parse_args()
    rows = []
    for net_arch, n_critics in SHAPES:
        ms = update_cost(a.dream_id, net_arch, n_critics, a.steps, a.repeats)
        rows.append({"net_arch": net_arch, "n_critics": n_critics, "ms_per_gradient_step": round(ms, 1)})
        print(f"{net_arch} x {n_critics} critics: {ms:.1f} ms per gradient step", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/ad_hoc/sac_update_cost.py --dream-id {a.dream_id} --out {a.out}"
    out.with_suffix(".json").write_text(json.dumps({"command": command, "dream_id": a.dream_id, "batch_size": 256, "threads": 1,
                                                   "rows": rows}, indent=2) + "\n")
    lines = [f"SAC gradient step cost in {a.dream_id} (one torch thread, batch 256, gSDE; `{command}`)", "",
             "| networks (actor and critics) | critics | ms per gradient step |", "|---|---|---|"]
    lines += [f"| {'-'.join(map(str, r['net_arch']))} | {r['n_critics']} | {r['ms_per_gradient_step']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
