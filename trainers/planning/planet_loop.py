"""The PlaNet loop (Hafner et al. 2019): seed episodes, then repeat {fit the RSSM, collect one episode
with the CEM planner plus exploration noise, evaluate every k episodes}.

Folders under ``out``: ``data/`` (the replay data: one atomic shard per episode, the same format as
``gym-dream collect``, never rewritten), ``model/`` (the current RSSM as a model directory, usable as a
``Dream-*`` model at any time), ``checkpoint.safetensors`` (model + optimiser + progress, written
atomically after every episode), ``log.jsonl`` and ``planet_log.csv`` (one row per loop episode: its real
return, real steps, updates, the mean losses of its updates and the evaluation when there is one; TensorBoard
under ``tb/planet`` when installed). Re-running the same command resumes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gym_dream.wrappers import DreamObservation, action_repeat_of
from trainers.infra.checkpoints import load_checkpoint, save_checkpoint
from trainers.data.collect import CollectConfig, collect
from trainers.data.dataset import Episode, EpisodeDataset, count_episodes, write_shard
from trainers.data.real_envs import make_real_env
from trainers.evaluation.rollout import real_episode_returns
from trainers.fit.rssm import rssm_for, train_rssm, write_model
from trainers.infra.folder_lock import held
from trainers.planning.cem import CEMPlanner
from trainers.planning.icem import PLANNER_PRESETS, make_planner
from trainers.fit.presets import RSSM_PRESETS, check_ranges, preset
from trainers.infra.progress import progress
from trainers.infra.training_log import TrainingLog

logger = logging.getLogger(__name__)

#: model size and training budget per collected episode (trainers/fit/presets.py)
PLANET_PRESETS = RSSM_PRESETS

#: the valid range of each numeric option (trainers.fit.presets.check_ranges)
PLANET_RANGES: dict[str, str] = {
    **{k: "integer >= 1" for k in ("episodes", "seed_episodes", "train_steps", "eval_every", "eval_episodes", "max_episode_steps", "threads")},
    "overshooting": "integer >= 0", "exploration": "number >= 0", "free_nats": "number >= 0", "lr": "number > 0", "grad_clip": "number > 0",
}


@dataclass
class PlaNetConfig:
    env_id: str = "dm_control/cartpole-swingup-v0"
    """the real env (dm_control/* through shimmy, or any Gymnasium id)"""
    env_kwargs: dict[str, Any] = field(default_factory=lambda: {"obs": "pixels"})
    """real-env options, e.g. {"obs": "state"} for DMC's low-dimensional state"""
    out: str = "runs/planet"
    """run folder (data/, model/, checkpoint, log)"""
    preset: str = "cpu"
    """model size and budgets: planet | cpu | tiny (see PLANET_PRESETS)"""
    episodes: int = 100
    """total real episodes to collect (seed episodes included)"""
    seed_episodes: int = 5
    """random-policy episodes first"""
    train_steps: int | None = None
    """RSSM updates per collected episode (C; default: the preset's)"""
    exploration: float = 0.3
    """Gaussian action noise while collecting (epsilon for Discrete actions)"""
    free_nats: float = 3.0
    """KL below this many nats is not penalised"""
    overshooting: int = 0
    """latent overshooting distance D (0: off; PlaNet used 50 with the RSSM's KL only)"""
    lr: float = 1e-3
    """Adam learning rate"""
    grad_clip: float = 1000.0
    """gradient norm clip"""
    eval_every: int = 10
    """evaluate the planner (no noise) every this many collected episodes"""
    eval_episodes: int = 5
    """real episodes per evaluation"""
    max_episode_steps: int | None = None
    """override the real env's horizon (agent steps)"""
    seed: int = 0
    """seed of everything"""
    device: str = "cpu"
    """torch device"""
    threads: int | None = None
    """torch CPU threads"""
    planner: str | None = None
    """the planner that collects and evaluates, a preset of trainers.planning.icem.PLANNER_PRESETS (planet, cpu, tiny,
    icem, icem-small, mppi; results/planner.md); default: the preset's CEM"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count, or an unknown planner, now, before any folder is made (PLANET_RANGES)."""
        check_ranges(self, PLANET_RANGES, "planet")
        if self.planner is not None and self.planner not in PLANNER_PRESETS:
            raise ValueError(f"planet --planner must be one of {sorted(PLANNER_PRESETS)}, got {self.planner!r}.")


def run_episode(env: DreamObservation, planner: CEMPlanner, exploration: float, seed: int) -> tuple[Episode, float]:
    """One real episode acting with the planner; returns it in dataset form (model-input observations)."""
    obs_in, actions, rewards, terminated, truncated = [], [], [], [], []
    env.reset(seed=seed)
    if hasattr(planner, "begin_episode"):  # a warm-started planner forgets the last episode's plan
        planner.begin_episode(seed)
    obs_in.append(env.last_input[0].cpu().numpy())
    done, total = False, 0.0
    while not done:
        action = planner.act(env.state, exploration)
        _, reward, term, trunc, _ = env.step(action)
        obs_in.append(env.last_input[0].cpu().numpy())
        actions.append(np.asarray(action))
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        total += float(reward)
        done = term or trunc
    ep = Episode(np.stack(obs_in), np.stack(actions), np.asarray(rewards, np.float32), np.asarray(terminated), np.asarray(truncated))
    return ep, total


def _training(cfg: PlaNetConfig, p: dict[str, Any], train_steps: int, n_eps: int, record: dict[str, Any], data: Path) -> dict[str, Any]:
    """The card's ``training`` section of the loop's model: how far the loop had got when it was written."""
    return {"family": "rssm", "loop": "PlaNet (trainers/planning/planet_loop.py)", "preset": cfg.preset, "hyperparameters": {**p, "train_steps": train_steps},
            "episodes": n_eps, "real_steps": int(count_episodes(data)[1]), "updates": record["updates"], "seed": cfg.seed,
            "exploration": cfg.exploration, "free_nats": cfg.free_nats, "overshooting": cfg.overshooting, "planner": cfg.planner or p["planner"],
            "torch": torch.__version__}


def run_planet(cfg: PlaNetConfig) -> dict[str, Any]:
    """Run (or resume) the loop until ``cfg.episodes`` episodes are collected; returns a summary."""
    if cfg.seed_episodes < 1 or cfg.episodes < cfg.seed_episodes:
        raise ValueError(f"Need 1 <= seed_episodes <= episodes, got {cfg.seed_episodes} and {cfg.episodes}.")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    p = preset(RSSM_PRESETS, cfg.preset, "PlaNet")
    train_steps = cfg.train_steps or p["train_steps"]
    out = Path(cfg.out)
    data, ckpt, log = out / "data", out / "checkpoint.safetensors", out / "log.jsonl"
    with held(out, "planet"):  # one process per loop: a second copy would interleave its episodes and checkpoints
        out.mkdir(parents=True, exist_ok=True)
        env_kwargs = dict(cfg.env_kwargs)
        if cfg.max_episode_steps is not None:
            env_kwargs["max_episode_steps"] = cfg.max_episode_steps
        # 1. seed episodes (resumable, like any collection)
        collect(CollectConfig(env_id=cfg.env_id, out=str(data), episodes=cfg.seed_episodes, steps=None, workers=1, seed=cfg.seed,
                              policy="random", env_kwargs=cfg.env_kwargs, max_episode_steps=cfg.max_episode_steps))
        ds = EpisodeDataset(data)
        torch.manual_seed(cfg.seed)
        model = rssm_for(ds.meta, p).to(cfg.device)
        model.fit_normalizer(torch.as_tensor(ds.obs[: ds.obs_start[min(len(ds), cfg.seed_episodes) - 1] + 1]))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-4)
        record: dict[str, Any] = {"config": asdict(cfg), "updates": 0, "evaluations": []}
        if ckpt.is_file():
            record = load_checkpoint(ckpt, {"model": model}, {"adam": opt})
            logger.info(f"resuming PlaNet after {record['updates']} updates ({count_episodes(data)[0]} episodes in the replay data)")
        real = make_real_env(cfg.env_id, **env_kwargs)
        card = {"env": {"id": cfg.env_id, "kwargs": cfg.env_kwargs, "max_episode_steps": real.spec.max_episode_steps if real.spec else None,
                        "action_repeat": action_repeat_of(real)},
                "description": f"PlaNet RSSM of {cfg.env_id} ({cfg.env_kwargs}), trained by the PlaNet loop",
                "reproduce": f"gym-dream planet --env-id {cfg.env_id} --env-kwargs '{json.dumps(cfg.env_kwargs)}' --preset {cfg.preset} --episodes {cfg.episodes}"}
        model.card = card
        env = DreamObservation(real, model, device=cfg.device)
        planner = make_planner(model, cfg.planner or p["planner"], seed=cfg.seed)
        rng = np.random.default_rng([cfg.seed, record["updates"]])
        g = torch.Generator(cfg.device).manual_seed(cfg.seed + record["updates"])
        start = time.time()
        n_eps = len(ds)
        bar = progress(total=cfg.episodes, initial=n_eps, desc=f"PlaNet {cfg.env_id}", unit="ep")
        tlog = TrainingLog(out, "planet", resume_from=n_eps)  # step = episodes collected
        while n_eps < cfg.episodes:
            t0 = time.time()
            losses = train_rssm(model, opt, ds, train_steps, p["batch"], p["chunk"], rng, g, cfg.free_nats, cfg.overshooting, cfg.grad_clip, cfg.device)
            record["updates"] += train_steps
            t1 = time.time()
            ep, ret = run_episode(env, planner, cfg.exploration, seed=cfg.seed * 100_003 + n_eps)
            write_shard(data, n_eps, [ep])
            n_eps += 1
            entry = {"episodes": n_eps, "real_steps": int(count_episodes(data)[1]), "updates": record["updates"], "collect_return": ret,
                     "train_seconds": round(t1 - t0, 1), "collect_seconds": round(time.time() - t1, 1), **{f"loss_{k}": v for k, v in losses.items()}}
            if n_eps % cfg.eval_every == 0 or n_eps == cfg.episodes:
                write_model(model, ds, out / "model", {**card, "training": _training(cfg, p, train_steps, n_eps, record, data)})
                ev = make_planner(model, cfg.planner or p["planner"], seed=cfg.seed + 1)
                returns, _ = real_episode_returns(ev, cfg.env_id, out / "model", cfg.eval_episodes, seed=10_000, desc="evaluate", env_kwargs=env_kwargs)
                entry["eval_return_mean"], entry["eval_return_std"] = float(returns.mean()), float(returns.std())
                record["evaluations"].append({"episodes": n_eps, "mean": entry["eval_return_mean"], "std": entry["eval_return_std"]})
            with open(log, "a") as f:
                f.write(json.dumps(entry) + "\n")
            save_checkpoint(ckpt, {"model": model}, {"adam": opt}, record)
            tlog.write(n_eps, real_return=ret, real_steps=entry["real_steps"], updates=record["updates"], train_seconds=entry["train_seconds"],
                       collect_seconds=entry["collect_seconds"], **{f"loss_{k}": v for k, v in losses.items()},
                       **{k: entry[k] for k in ("eval_return_mean", "eval_return_std") if k in entry})
            ds = EpisodeDataset(data)
            bar.update(1)
            bar.set_postfix(ret=f"{ret:.0f}")
        bar.close()
        tlog.close()
        write_model(model, ds, out / "model", {**card, "training": _training(cfg, p, train_steps, n_eps, record, data)})
        return {"episodes": n_eps, "updates": record["updates"], "evaluations": record["evaluations"], "seconds": time.time() - start, "out": str(out)}
