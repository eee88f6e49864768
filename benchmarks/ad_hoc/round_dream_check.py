"""Did a collection round make the dream harder where it was kind? The same agents (and random play) in several
models' dreams at one temperature, side by side: dream returns only, a diagnostic that chooses nothing.

    python benchmarks/ad_hoc/round_dream_check.py --models doom-takecover runs/doomr/model \
        --agents runs/doomr/cmaes115-r0/mean cmaes-tau1.3 --tau 1.15 --out results/runs/doom-round/doom_round_dream_check.json

Agents are directories or names of agents shipped with the first model; each reads the features of the model it is
run in (a refit that kept the VAE, as in results/doom_round.md, keeps the features' meaning close).
"""

import argparse
import json

import gym_dream
from gym_dream.agents import agent_path
from trainers.evaluation.evaluate import RandomAgent
from trainers.evaluation.rollout import dream_episode_returns
from trainers.agents.stored_agent import load_agent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="Dream-DoomTakeCover-v0")
    p.add_argument("--models", nargs="+", required=True, help="model names or directories")
    p.add_argument("--agents", nargs="*", default=[], help="agent directories or names shipped with the first model")
    p.add_argument("--tau", type=float, default=1.15)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the table as JSON here")
    a = p.parse_args()
    space = gym_dream.resolve_model(a.models[0]).action_space
    agents = [("random", RandomAgent(space, seed=a.seed))] + [(name, load_agent(agent_path(name, a.models[0]))) for name in a.agents]
    rows = []
    for model in a.models:
        for name, agent in agents:
            r = dream_episode_returns(agent, a.env_id, model, a.tau, a.episodes, seed=a.seed)
            rows.append({"model": model, "agent": name, "tau": a.tau, "mean": float(r.mean()), "std": float(r.std()), "episodes": len(r)})
            print(f"{model:30s} {name:40s} {r.mean():8.1f} ± {r.std():.1f}", flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"command": "python benchmarks/ad_hoc/round_dream_check.py " + " ".join(
                f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(a).items() if v is not None),
                "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
