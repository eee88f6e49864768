"""How agents use a continuous action space in the dream, and what capping one action dimension does on the real env.

For each agent (a directory, a shipped agent's name or an SB3 .zip of your own): its deterministic actions over
``--envs`` dreams x ``--steps`` steps (seed ``--seed``), per dimension the mean, the std and the share of steps near
either bound. With ``--cap DIM VALUE`` and ``--episodes N``: the agent's real return over N episodes (seeds from
``--real-seed``) as it is and with action dimension DIM capped at VALUE (the same episodes), to test whether a part of
the action space the agent leans on is one the dream gets wrong.

    python benchmarks/ad_hoc/action_profile.py runs/range/carracing-sac-s0/best ppo-tau1.7 cmaes-tau1.15 --dream-id Dream-CarRacing-v0 \
        --tau 1.7 --cap 2 0.0 --episodes 20 --real-seed 300000 --out results/runs/carracing-diagnostics/carracing_action_profile.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


class Capped:
    """An agent whose action dimension ``dim`` is capped at ``value`` (picklable, for the real-episode workers)."""

    def __init__(self, agent, dim: int, value: float):
        self.agent, self.dim, self.value = agent, dim, value

    def predict(self, obs, deterministic=True):
        action, state = self.agent.predict(obs, deterministic=deterministic)
        action = np.array(action, copy=True)
        action[..., self.dim] = np.minimum(action[..., self.dim], self.value)
        return action, state

    def begin_episode(self, seed):
        if hasattr(self.agent, "begin_episode"):
            self.agent.begin_episode(seed)


def profile(agent, dream_id: str, tau: float | None, envs: int, steps: int, seed: int) -> dict:
    import gymnasium as gym

    venv = gym.make_vec(dream_id, num_envs=envs, vectorization_mode="vector_entry_point", tau=tau)
    if not isinstance(venv.single_action_space, gym.spaces.Box):
        raise SystemExit(f"{dream_id} has {venv.single_action_space} actions: this profile is for continuous (Box) actions.")
    low, high = venv.single_action_space.low, venv.single_action_space.high
    obs, _ = venv.reset(seed=seed)
    if hasattr(agent, "begin_episode"):
        agent.begin_episode(seed)
    actions = []
    for _ in range(steps):
        a, _ = agent.predict(obs, deterministic=True)
        actions.append(np.asarray(a, dtype=np.float64))
        obs, *_ = venv.step(a)
    venv.close()
    a = np.concatenate(actions)
    span = high - low
    return {"mean": a.mean(0).round(3).tolist(), "std": a.std(0).round(3).tolist(),
            "near_low": (a <= low + 0.1 * span).mean(0).round(3).tolist(), "near_high": (a >= high - 0.1 * span).mean(0).round(3).tolist(),
            "steps": int(a.shape[0])}


def main() -> None:
    import gymnasium as gym

    import gym_dream
    from gym_dream.agents import agent_path
    from trainers.agents.stored_agent import load_agent
    from trainers.evaluation.rollout import real_episodes

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("agents", nargs="+", help="agent directories, shipped agents' names or SB3 .zip files")
    p.add_argument("--dream-id", required=True)
    p.add_argument("--tau", type=float, default=None)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cap", nargs=2, type=float, metavar=("DIM", "VALUE"), default=None)
    p.add_argument("--episodes", type=int, default=0, help="real episodes per agent for --cap (0: dream profile only)")
    p.add_argument("--real-seed", type=int, default=300000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", required=True, help="a JSON file")
    a = p.parse_args()
    model = gym.spec(a.dream_id).kwargs["default_model"]
    rows = []
    for name in a.agents:
        agent = load_agent(agent_path(name, model))
        row = {"agent": name, "dream_id": a.dream_id, "tau": a.tau, "dream_actions": profile(agent, a.dream_id, a.tau, a.envs, a.steps, a.seed)}
        if a.cap is not None and a.episodes:
            seeds = range(a.real_seed, a.real_seed + a.episodes)
            real_id = gym_dream.resolve_model(model).card["env"]["id"]
            for key, acting in (("real", agent), ("real_capped", Capped(agent, int(a.cap[0]), a.cap[1]))):
                r = np.array([e.ret for e in real_episodes(acting, real_id, model, seeds, workers=a.workers)])
                row[key] = {"mean": round(float(r.mean()), 1), "std": round(float(r.std()), 1), "episodes": len(r), "seeds": [seeds[0], seeds[-1]]}
            row["cap"] = {"dim": int(a.cap[0]), "value": a.cap[1]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
