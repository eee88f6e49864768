"""How does a CarRacing agent end its real episodes? Each episode's outcome, tiles and time off the road.

    python benchmarks/ad_hoc/carracing_episodes.py results/carracing_cmaes_tau1.15 --model runs/carracing/model \\
        --seeds 0 100 --out results/carracing_episodes.json

A mean of 424 ± 336 over 100 tracks can be many middling laps or a few perfect ones and many crashes;
they call for different fixes. Per episode (seed order, the seeds of ``evaluate``'s test tracks): the
return, the steps, how many of the track's tiles the car visited, the outcome -- ``lap`` (every tile
visited), ``left the playfield`` (CarRacing's -100 and the end of the episode) or ``time limit`` (1000
steps) -- and when all four wheels first left the road and for how many steps they were off it. The
summary counts each outcome with its mean return. ``--noise SIGMA`` runs the agent with the collection
rounds' OU action noise, as in the report's noise row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


PENALTY = -50.0  # CarRacing's only reward below this is the -100 for leaving the playfield
OUTCOMES = ("lap", "left the playfield", "time limit")


def outcome(terminated: bool, last_reward: float) -> str:
    """CarRacing ends an episode (terminated) with -100 when the car leaves the playfield, and without it when
    every tile is visited; anything else that ends it is the time limit (truncated)."""
    if not terminated:
        return "time limit"
    return "left the playfield" if last_reward < PENALTY else "lap"


class OffRoad:
    """What :func:`trainers.evaluation.rollout.real_episodes` records of each CarRacing episode: the tiles the car visited,
    the track's tiles, and when all four wheels first left the road and for how many steps they were off it."""

    def start(self, env) -> None:
        self.steps, self.off, self.first_off = 0, 0, None

    def step(self, env) -> None:
        self.steps += 1
        car = env.unwrapped.car
        if car is not None and all(len(w.tiles) == 0 for w in car.wheels):
            self.off += 1
            self.first_off = self.steps if self.first_off is None else self.first_off

    def end(self, env) -> dict[str, Any]:
        track = env.unwrapped
        return {"tiles": int(track.tile_visited_count), "track_tiles": len(track.track), "first_off_road_step": self.first_off,
                "off_road_steps": self.off}


def run_episodes(agent_path: str, model: str, seeds: list[int], noise: float | None = None, max_steps: int | None = None,
                 workers: int = 1) -> list[dict[str, Any]]:
    """One row per seed (in seed order), the seeds split over ``workers`` processes. ``agent_path`` is any stored
    agent (:func:`trainers.agents.stored_agent.load_agent`: a controller, an SB3 policy acting as it was trained, a vote)."""
    import gymnasium as gym
    import torch

    import gym_dream
    from trainers.data.noise import WithActionNoise
    from trainers.evaluation.rollout import real_episodes
    from trainers.agents.stored_agent import load_agent

    torch.set_num_threads(1)
    agent = load_agent(agent_path)
    if noise:
        agent = WithActionNoise(agent, gym.make("CarRacing-v3").action_space, noise)
    kwargs = dict((gym_dream.resolve_model(model).card.get("env") or {}).get("kwargs") or {})
    if max_steps:
        kwargs["max_episode_steps"] = max_steps
    eps = real_episodes(agent, "CarRacing-v3", model, seeds, env_kwargs=kwargs, workers=workers, desc="CarRacing", watch=OffRoad())
    return [{"seed": e.seed, "return": round(e.ret, 2), "steps": e.length, "outcome": outcome(e.terminated, e.last_reward), **e.watched}
            for e in eps]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    returns = np.array([r["return"] for r in rows])
    by = {}
    for o in OUTCOMES:
        sel = [r for r in rows if r["outcome"] == o]
        by[o] = {"episodes": len(sel), "mean_return": float(np.mean([r["return"] for r in sel])) if sel else None,
                 "mean_tile_fraction": float(np.mean([r["tiles"] / r["track_tiles"] for r in sel])) if sel else None}
    return {"episodes": len(rows), "mean": float(returns.mean()), "std": float(returns.std()), "outcomes": by,
            "episodes_off_road": sum(r["off_road_steps"] > 0 for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("agent", help="a stored agent: a linear controller, an SB3 policy (<run>/best) or an ensemble folder")
    p.add_argument("--model", required=True, help="the model directory or name the agent sees through")
    p.add_argument("--seeds", type=int, nargs=2, default=(0, 100), metavar=("FIRST", "END"), help="seeds FIRST..END-1")
    p.add_argument("--noise", type=float, default=None, help="OU action noise sigma (theta 0.15)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes short (a quick look; outcomes become 'time limit')")
    p.add_argument("--out", default=None, help="also write the rows and summary as JSON here")
    a = p.parse_args()
    seeds = list(range(*a.seeds))
    if not seeds:
        raise SystemExit(f"--seeds {a.seeds[0]} {a.seeds[1]} is empty: END must be above FIRST.")
    rows = run_episodes(a.agent, a.model, seeds, a.noise, a.max_steps, a.workers)
    out = {"agent": a.agent, "model": a.model, "noise": a.noise, "seeds": [seeds[0], seeds[-1]],
           "summary": summarize(rows), "episodes": rows}
    print(json.dumps(out["summary"], indent=2))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
