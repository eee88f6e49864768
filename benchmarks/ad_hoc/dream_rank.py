"""Rank agents by their dream return alone: a choice that uses no real episode.

Each agent (a directory or a shipped agent's name) plays ``--episodes`` dream episodes of ``--dream-id`` at ``--tau``
(one batched dream per agent, the same seeds for all), and the table gives its mean and std, best first. ``--keep K``
also writes the K best as one voting ensemble (``gym-dream ensemble``) to ``--ensemble``.

    python benchmarks/ad_hoc/dream_rank.py AGENT... --dream-id Dream-DoomTakeCover-v0 --tau 1.15 --episodes 100 --seed 390000 \
        --keep 7 --ensemble runs/doomr/vote115-top7 --out results/runs/doom-diagnostics/doom_dream_rank
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


import gym_dream  # noqa: F401  (registers the Dream-* ids that agent_path reads)
from gym_dream.agents import agent_path
from trainers.agents.ensemble import save_ensemble
from trainers.agents.stored_agent import load_agent
from trainers.evaluation.rollout import dream_episode_returns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("agents", nargs="+")
    p.add_argument("--dream-id", required=True)
    p.add_argument("--model", default=None, help="model directory or name (default: the id's shipped model)")
    p.add_argument("--tau", type=float, required=True)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-episode-steps", type=int, default=None,
                   help="dream horizon (default: the id's); a longer one tells apart agents that reach the id's limit")
    p.add_argument("--keep", type=int, default=None, help="write the K best as one voting ensemble")
    p.add_argument("--ensemble", default=None, help="where --keep writes the ensemble")
    p.add_argument("--out", required=True, help="report path without extension (.json and .md are written)")
    a = p.parse_args()
    if (a.keep is None) != (a.ensemble is None):
        p.error("--keep and --ensemble go together: how many of the best, and where their vote is written.")
    rows = []
    for name in a.agents:
        path = str(agent_path(name, a.model, a.dream_id))
        r = dream_episode_returns(load_agent(path), a.dream_id, a.model, a.tau, a.episodes, seed=a.seed,
                                  dream_kwargs={"max_episode_steps": a.max_episode_steps} if a.max_episode_steps else None)
        rows.append({"agent": path, "dream_mean": float(r.mean()), "dream_std": float(r.std()), "episodes": a.episodes,
                     "dream_returns": [float(x) for x in r]})
        print(f"{path}: dream {r.mean():.1f} ± {r.std():.1f}", flush=True)
    rows.sort(key=lambda row: -row["dream_mean"])
    report = {"dream_id": a.dream_id, "model": a.model, "tau": a.tau, "seed": a.seed, "max_episode_steps": a.max_episode_steps,
              "ranked": rows}
    if a.keep is not None:
        kept = [row["agent"] for row in rows[:a.keep]]
        save_ensemble(kept, a.ensemble, load_member=load_agent)
        report["kept"], report["ensemble"] = kept, a.ensemble
    Path(a.out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| rank | agent | dream return | kept |", "|---|---|---|---|"]
    lines += [f"| {i + 1} | {row['agent']} | {row['dream_mean']:.1f} ± {row['dream_std']:.1f} ({a.episodes} ep) | "
              f"{'yes' if a.keep is not None and i < a.keep else ''} |" for i, row in enumerate(rows)]
    Path(a.out).with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
