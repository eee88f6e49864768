"""Is the dream as hard as the real game? The same random policy in both, side by side.

    python benchmarks/ad_hoc/dream_check.py runs/doom/model                       # VizDoom take-cover model
    python benchmarks/ad_hoc/dream_check.py runs/doom/model --taus 1.0 1.15 1.3 --episodes 200 --workers 16

A dream that ends episodes less often than the real game lets a controller "survive" there by doing
nothing in particular; one that ends them more often teaches it to fear what is harmless. This runs
a uniform random policy for ``--episodes`` episodes in the real env (through ``DreamObservation``) and
in the dream at every tau, with both termination modes (``threshold``: p_end > 0.5; ``sample``: end
with probability p_end), and prints return mean ± std (for take-cover: steps survived).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


import gym_dream
from gym_dream.catalogue import CATALOGUE, by_real_id
from trainers.evaluation.evaluate import RandomAgent, stats
from trainers.evaluation.rollout import dream_episode_returns, real_episode_returns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory or name")
    p.add_argument("--taus", type=float, nargs="+", default=[0.1, 0.5, 1.0, 1.15, 1.3])
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--real-episodes", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="processes for the real episodes")
    p.add_argument("--device", default="cpu", help="torch device of the dreams")
    p.add_argument("--out", default=None, help="also write the table as JSON here")
    a = p.parse_args()
    model = gym_dream.resolve_model(a.model)
    real_id = model.card["env"]["id"]
    known = by_real_id(real_id)
    if known is None:
        p.error(f"no registered dream id for {real_id}; known: {sorted(e.real_id for e in CATALOGUE)}")
    dream_id = known.dream_id
    real, _ = real_episode_returns(RandomAgent(model.action_space, seed=0), real_id, a.model, a.real_episodes, seed=0, workers=a.workers)
    table = {"real": stats(real), "dream": {}}
    print(f"random policy, real {real_id}: {real.mean():.1f} ± {real.std():.1f} ({a.real_episodes} episodes)", flush=True)
    for tau in a.taus:
        for mode in ("threshold", "sample"):
            r = dream_episode_returns(RandomAgent(model.action_space, seed=1), dream_id, a.model, tau, a.episodes, seed=1,
                                      device=a.device, termination=mode)
            table["dream"][f"{tau}/{mode}"] = stats(r)
            print(f"random policy, dream tau {tau:<5} {mode:<9}: {r.mean():.1f} ± {r.std():.1f} ({a.episodes} episodes)", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
