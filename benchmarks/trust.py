"""Dreams an agent can trust: the same SB3 agent trained in a plain dream and in dreams with the uncertainty penalty
(MOPO), the halt (MOReL) or both, each scored on the real env. The agent is chosen in its own dream alone.

    python benchmarks/trust.py --model models/carracing-m5 --dream-id Dream-CarRacing-v0 --tau 1.15 --algo ppo \\
        --timesteps 100000 --episodes 20 --work runs/trust-carracing --out results/runs/trust/trust_carracing

Configurations (``--configs``): ``plain`` (a random member per dream episode, nothing else), ``penalty``
(reward - lambda * disagreement, lambda = ``--penalty-scale`` / the card's held-out ``--penalty-quantile`` of the
disagreement: at that quantile the penalty costs ``--penalty-scale`` reward per step), ``limit`` (the episode halts where
the disagreement passes the card's ``--limit`` quantile) and ``both``. Each row: the dream return in the plain dream and
in its own, the real return (seeds ``--seed``...), the gap, the real steps behind the model and the wall time.
Resumable: each configuration's agent and row are kept in ``--work``; the table is rewritten after each row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


import gym_dream
from gym_dream.checkpoint import atomic_write_bytes
from trainers.evaluation.evaluate import evaluate, stats
from trainers.evaluation.rollout import dream_episode_returns
from trainers.agents.stored_agent import load_agent
from trainers.agents.sb3 import SB3Config, train_sb3
from trainers.infra.provenance import provenance

CONFIGS = ("plain", "penalty", "limit", "both")


def dream_kwargs(config: str, card: dict, penalty_scale: float, penalty_quantile: str, limit: str) -> dict:
    quantiles = ((card.get("uncertainty") or {}).get("heldout_disagreement") or {}).get("quantiles") or {}
    lam = penalty_scale / float(quantiles[penalty_quantile.lstrip("q")]) if config in ("penalty", "both") else 0.0
    return {**({"uncertainty_penalty": lam} if lam else {}), **({"uncertainty_limit": limit} if config in ("limit", "both") else {})}


def table(rows: list[dict]) -> str:
    lines = ["| agent | dream | dream return (plain dream) | dream return (its dream) | real return | real episodes | gap | "
             "real steps (model data) | wall time (train + score) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, own, real = next(iter(r["dream"].values())), r["own_dream"], r["real"]
        lines.append(f"| {r['algo'].upper()} | {r['config']} `{json.dumps(r['dream_kwargs'])}` | {d['mean']:.0f} ± {d['std']:.0f} | "
                     f"{own['mean']:.0f} ± {own['std']:.0f} | **{real['mean']:.0f} ± {real['std']:.0f}** | {real['episodes']} | "
                     f"{d['mean'] - real['mean']:+.0f} | {r['model_real_steps']} | {r['train_seconds'] / 60:.0f} + {r['seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a model with several members (fit --members)")
    p.add_argument("--dream-id", required=True)
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--algo", default="ppo")
    p.add_argument("--timesteps", type=int, default=100_000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--hparams", type=json.loads, default={"n_steps": 256}, help="SB3 hyper-parameters (JSON; default: SB3's, n_steps 256)")
    p.add_argument("--episodes", type=int, default=20, help="real episodes per configuration")
    p.add_argument("--seed", type=int, default=300_000, help="first real seed (no selection used these)")
    p.add_argument("--agent-seed", type=int, default=0, help="seed of the agent and of its training dreams")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--penalty-scale", type=float, default=1.0)
    p.add_argument("--penalty-quantile", default="q95")
    p.add_argument("--limit", default="q99")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    a = p.parse_args()
    model = gym_dream.resolve_model(a.model)
    if model.members < 2:
        p.error(f"{a.model} has one member: fit one with several (gym-dream fit ... --members 5)")
    work, rows = Path(a.work), []
    for config in a.configs:
        kw = dream_kwargs(config, model.card, a.penalty_scale, a.penalty_quantile, a.limit)
        run, row_path = work / f"{a.algo}-{config}", work / f"{a.algo}-{config}.json"
        if not row_path.is_file():
            if not (run / "train_seconds.json").is_file():  # written once training finished (train_sb3 resumes a stopped run)
                t0 = time.time()
                train_sb3(SB3Config(algo=a.algo, env_id=a.dream_id, model=a.model, out=str(run), tau=a.tau, timesteps=a.timesteps,
                                    num_envs=a.num_envs, eval_every=max(a.timesteps // 5, 1), eval_episodes=16, hparams=a.hparams,
                                    dream_kwargs=kw, seed=a.agent_seed))
                (run / "train_seconds.json").write_text(json.dumps({"seconds": time.time() - t0}))
            agent = load_agent(run / "best")
            row = evaluate(agent, a.dream_id, a.model, taus=(a.tau,), episodes=a.episodes, dream_episodes=100, seed=a.seed,
                           name=f"{a.algo.upper()} in the {config} dream", workers=a.workers)
            own = dream_episode_returns(agent, a.dream_id, a.model, a.tau, 100, seed=1_000_000 + a.seed, dream_kwargs=kw)
            row.update(algo=a.algo, config=config, dream_kwargs=kw, own_dream=stats(own), timesteps=a.timesteps, agent_seed=a.agent_seed,
                       model_real_steps=int(model.card["data"].get("real_steps_in_all", model.card["data"]["steps"])),
                       train_seconds=json.loads((run / "train_seconds.json").read_text())["seconds"])
            atomic_write_bytes(row_path, (json.dumps(row, indent=2) + "\n").encode())
            print(f"{config}: dream {next(iter(row['dream'].values()))['mean']:.0f}, real {row['real']['mean']:.0f} ± {row['real']['std']:.0f}",
                  flush=True)
        rows.append(json.loads(row_path.read_text()))
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out.with_suffix(".json"), (json.dumps({"command": " ".join(sys.argv), "rows": rows, "provenance": provenance()}, indent=2) + "\n").encode())
        atomic_write_bytes(out.with_suffix(".md"), table(rows).encode())
    print(table(rows))


if __name__ == "__main__":
    main()
