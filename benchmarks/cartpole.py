"""CartPole from dreams alone: the model (10k random real steps) and three agents trained only in it.

    python benchmarks/cartpole.py model            # collect + fit; results/cartpole_model.{json,md}
    python benchmarks/cartpole.py model --ship     # ... and install it as the bundled default model
    python benchmarks/cartpole.py agents           # CMA-ES, PPO, DQN + a tau sweep; results/cartpole.{md,json}

Every number in results/cartpole*.md comes from these commands (wall times are for this machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch


import gym_dream
from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.data.collect import CollectConfig, collect
from trainers.data.dataset import EpisodeDataset
from trainers.evaluation.evaluate import evaluate, markdown_table
from trainers.agents.stored_agent import load_agent
from trainers.export.package import record_scores, stage_model_dir
from trainers.fit.dispatch import FitConfig, fit
from trainers.agents.sb3 import SB3Config, train_sb3
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]

WORK = ROOT / "runs" / "cartpole"
RESULTS = ROOT / "results"
REAL_STEPS = 10_000


@torch.no_grad()
def open_loop_errors(model_dir: Path, data_dir: Path, horizons=(1, 10, 50)) -> dict:
    """RMSE (real units, per observation dimension) of the model's most likely prediction (tau -> 0)
    k steps ahead, open loop under the real actions, from held-out real episodes."""
    model = gym_dream.load_model(model_dir)
    ds = EpisodeDataset(data_dir)
    out = {}
    for k in horizons:
        eps = [i for i in range(len(ds)) if ds.lengths[i] >= k]
        errs = []
        for i in eps:
            ep = ds.episode(i)
            # every start t with t + k <= L
            starts = np.arange(0, len(ep) - k + 1)
            # the state at t: filter the real prefix (observe) up to t
            state = model.initial_state(1, obs=torch.as_tensor(ep.obs[:1]))
            states = [state]
            for t in range(1, starts[-1] + 1):
                state = model.observe(state, torch.as_tensor(ep.actions[t - 1 : t]), torch.as_tensor(ep.obs[t : t + 1]))
                states.append(state)
            batch = {key: torch.cat([s[key] for s in states]) for key in state}
            for j in range(k):
                a = torch.as_tensor(ep.actions[starts + j])
                batch = model.imagine(batch, a, 1e-6, None).state
            pred = model.decode(batch).numpy()
            errs.append(pred - ep.obs[starts + k])
        e = np.concatenate(errs) if errs else np.zeros((0, ds.obs.shape[1]))
        out[str(k)] = {"rmse_per_dim": np.sqrt((e ** 2).mean(0)).round(5).tolist(), "rmse": float(np.sqrt((e ** 2).mean())) if len(e) else None,
                       "predictions": int(len(e)), "episodes": len(eps)}
    return out


def stage_model(ship: bool) -> None:
    data, test = WORK / "data", WORK / "heldout"
    t0 = time.time()
    c = collect(CollectConfig(env_id="CartPole-v1", out=str(data), steps=REAL_STEPS, seed=0))
    collect_s = time.time() - t0
    collect(CollectConfig(env_id="CartPole-v1", out=str(test), episodes=300, steps=None, seed=12345))
    t0 = time.time()
    model_dir = fit(FitConfig(data=str(data), out=str(WORK / "model"), family="mdnrnn", seed=0,
                              extra_card={"description": "World Models (VAE-free: standardised state) + MDN-RNN for CartPole-v1, from 10,000 random real steps.",
                                          "reproduce": "python benchmarks/cartpole.py model"}))
    fit_s = time.time() - t0
    card = json.loads((model_dir / "model.json").read_text())
    res = {
        "real_steps": c["steps"], "episodes": c["episodes"], "collect_seconds": round(collect_s, 1), "fit_seconds": round(fit_s, 1),
        "heldout_one_step": card["training"]["heldout"]["mdnrnn"],
        "open_loop_rmse_fresh_random_episodes": open_loop_errors(model_dir, test),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads", "torch": torch.__version__,
        "command": "python benchmarks/cartpole.py model",
    }
    RESULTS.mkdir(exist_ok=True)
    atomic_write_bytes(RESULTS / "cartpole_model.json", (json.dumps({**res, "provenance": provenance()}, indent=2) + "\n").encode())
    h = res["heldout_one_step"]
    lines = [
        "# CartPole-v1 world model (MDN-RNN on the standardised state)", "",
        f"Reproduce: `python benchmarks/cartpole.py model` ({res['machine']}, torch {res['torch']}).", "",
        f"- data: {res['real_steps']} random real steps ({res['episodes']} episodes), collected in {res['collect_seconds']} s",
        f"- fit: {res['fit_seconds']} s on this CPU (acceptance: under 5 minutes)",
        f"- held-out one-step NLL per latent dim: {h['nll']:.3f} nats; reward MSE {h['reward_mse']:.2e}; "
        f"termination BCE {h['termination_bce']:.4f}, accuracy {h['termination_accuracy']:.4f} ({h['transitions']} held-out transitions)",
        "", "Open-loop prediction error (most likely prediction, real actions, 300 fresh random episodes; RMSE per dimension x, x_dot, theta, theta_dot):", "",
        "| steps ahead | RMSE (all dims) | RMSE per dim | predictions |", "|---|---|---|---|",
    ]
    for k, v in res["open_loop_rmse_fresh_random_episodes"].items():
        lines.append(f"| {k} | {v['rmse']:.4f} | {', '.join(f'{x:.4f}' for x in v['rmse_per_dim'])} | {v['predictions']} from {v['episodes']} episodes |")
    atomic_write_bytes(RESULTS / "cartpole_model.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    if ship:
        # staged exactly as `gym-dream export` stages a package's model (card declares the env id)
        dest = stage_model_dir(model_dir, ROOT / "gym_dream" / "bundled" / "cartpole", "Dream-CartPole-v0")
        print(f"shipped as {dest}")


def stage_agents(model: str, episodes: int) -> None:
    rows, timing = [], {}
    # CMA-ES at three temperatures (the tau sweep); PPO and DQN at tau 1.0
    for tau in (1.0, 0.5, 1.5):
        t0 = time.time()
        train_cmaes(CMAESConfig(model=model, out=str(WORK / f"cmaes-tau{tau}"), tau=tau, generations=20, seed=0))
        timing[f"cmaes tau={tau}"] = time.time() - t0
        rows.append(evaluate(load_agent(WORK / f"cmaes-tau{tau}" / "best"), "Dream-CartPole-v0", model, taus=(tau,), episodes=episodes, name=f"CMA-ES linear (trained at tau={tau})"))
    for algo, steps in (("ppo", 100_000), ("dqn", 100_000)):
        t0 = time.time()
        train_sb3(SB3Config(algo=algo, model=model, out=str(WORK / algo), timesteps=steps, num_envs=16 if algo == "ppo" else 8, seed=0))
        timing[algo] = time.time() - t0
        rows.append(evaluate(load_agent(WORK / algo / "best"), "Dream-CartPole-v0", model, taus=(1.0,), episodes=episodes, name=f"{algo.upper()} ({steps // 1000}k dream steps, tau=1.0)"))
    for row, (k, s) in zip(rows, timing.items()):
        row["train_seconds"] = round(s, 1)
    card = json.loads((Path(gym_dream.store.find_model_dir(model)) / "model.json").read_text())
    lines = [
        "# CartPole-v1 from dreams alone", "",
        "Reproduce: `python benchmarks/cartpole.py model --ship && python benchmarks/cartpole.py agents` "
        f"(2-core CPU, no GPU). Model: {card['data']['steps']} random real steps ({card['data']['episodes']} episodes); "
        "agents never touch the real env while training; each is scored on the real CartPole-v1 "
        f"over {episodes} episodes through `DreamObservation` (real seeds 0–{episodes - 1}).", "",
        markdown_table(rows), "",
        "| agent | real steps used (model data) | training wall time (s) | real evaluation steps |", "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['agent']} | {card['data']['steps']} | {row['train_seconds']} | {row['real_steps']} (scoring only) |")
    lines += ["", "For scale: a published reproduction of World Models on CartPole reached a real return of 10–17 with a dream return of 100–200; "
              "DQN trained on the real env reached 193 there."]
    atomic_write_bytes(RESULTS / "cartpole.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(RESULTS / "cartpole.json", (json.dumps([{**r, "provenance": provenance()} for r in rows], indent=2) + "\n").encode())
    if model == "cartpole":  # the shipped model: its card carries the scores
        record_scores(gym_dream.store.find_model_dir(model), rows, "the gym-dream repository's results/cartpole.md (python benchmarks/cartpole.py agents)")
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["model", "agents"])
    p.add_argument("--ship", action="store_true", help="copy the fitted model to gym_dream/bundled/cartpole")
    p.add_argument("--model", default="cartpole", help="model for the agents stage (default: the shipped one)")
    p.add_argument("--episodes", type=int, default=100)
    a = p.parse_args()
    stage_model(a.ship) if a.stage == "model" else stage_agents(a.model, a.episodes)
