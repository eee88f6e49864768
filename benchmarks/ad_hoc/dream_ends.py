"""Where does a dream END a controller's episodes? Each model's termination head, seen through the agents it trains.

    python benchmarks/ad_hoc/dream_ends.py --models runs/carracing/round6-final/model runs/carracing/refit7-end-weight20/model \\
        --controllers runs/carracing/round6-final/cmaes-tau0.5-seed1/mean runs/carracing/round6-final/cmaes-tau1.15-seed1/mean \\
        --taus 0.5 1.15 --out results/runs/carracing-diagnostics/carracing_dream_ends.json

A dream that never ends an episode where the real env would (CarRacing's -100 exits from the playfield) does
not punish what causes them; one that ends episodes where the real env would not truncates good runs at random.
Per model, controller and tau: the share of ``--episodes`` dream episodes (the same seeds for every row) that the
model ended before the horizon, the mean step of those ends, the dream returns they ended with, the reward of the
end step, and the mean dream return. Compare with how the controller really ends its episodes
(``benchmarks/ad_hoc/carracing_episodes.py``). ``--termination`` picks the dream's rule: threshold (end where the head's
probability passes 0.5) or sample (end with that probability).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


import gym_dream  # noqa: F401  (registers the Dream-* ids)
from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.controller import LinearController
from trainers.evaluation.rollout import agent_actions, dream_rollout, make_dream_vec


def dream_ends(agent, env_id: str, model: str, tau: float, episodes: int, seed: int = 2_000_000, termination: str = "threshold",
               horizon: int | None = None) -> dict[str, Any]:
    """How ``episodes`` dream episodes of ``agent`` end: one batched DreamVectorEnv, deterministic actions."""
    venv = make_dream_vec(env_id, episodes, model, tau, termination=termination)
    horizon = horizon or venv.unwrapped.max_episode_steps or 1000
    r = dream_rollout(venv, agent_actions(agent), seed, horizon)
    venv.close()
    ended = r.end_steps > 0
    return {
        "ended": float(ended.mean()), "episodes": episodes, "horizon": horizon, "mean_end_step": float(r.end_steps[ended].mean()) if ended.any() else None,
        "returns_at_ends": sorted(round(float(x), 1) for x in r.returns[ended]), "end_step_rewards": [round(float(x), 2) for x in r.end_rewards[ended]],
        "dream_return": float(r.returns.mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="model directories (or shipped names)")
    p.add_argument("--controllers", nargs="+", required=True, help="LinearController directories")
    p.add_argument("--taus", type=float, nargs="+", default=[1.15])
    p.add_argument("--env-id", default="Dream-CarRacing-v0")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--termination", choices=["threshold", "sample"], default="threshold")
    p.add_argument("--horizon", type=int, default=None, help="steps per dream episode (default: the env's limit)")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    a = p.parse_args()
    if a.episodes < 1:
        p.error("--episodes must be at least 1")
    rows = []
    for controller in a.controllers:
        if not Path(controller, "controller.json").is_file():
            p.error(f"no controller at {controller} (a directory with controller.json, as CMA-ES writes)")
        agent = LinearController.load(controller)
        for model in a.models:
            for tau in a.taus:
                r = {"controller": controller, "model": model, "tau": tau, "termination": a.termination,
                     **dream_ends(agent, a.env_id, model, tau, a.episodes, termination=a.termination, horizon=a.horizon)}
                rows.append(r)
                print(f"{controller} | {model} | tau {tau}: {100 * r['ended']:.0f}% of episodes ended "
                      f"(mean step {r['mean_end_step'] or float('nan'):.0f}), dream return {r['dream_return']:.0f}", flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(a.out), (json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
