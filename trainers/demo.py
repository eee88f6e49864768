"""The README's main job: on the shipped CartPole model, train agents only in the dream and score
them on the real CartPole-v1, printing the dream-vs-real table (a few minutes on 2 CPU cores)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from trainers.cmaes import CMAESConfig, train_cmaes
from trainers.controller import LinearController
from trainers.evaluate import evaluate, load_agent, markdown_table, write_report
from trainers.sb3 import SB3Config, train_sb3


@dataclass
class DemoConfig:
    model: str = "cartpole"
    """the world model (default: the shipped CartPole model)"""
    out: str = "runs/demo"
    """where agents and the report go"""
    episodes: int = 100
    """real episodes per agent"""
    generations: int = 15
    """CMA-ES generations (64 candidates x 16 dream rollouts each)"""
    ppo_timesteps: int = 100_000
    """PPO dream steps (0 skips PPO)"""


def run_demo(cfg: DemoConfig) -> str:
    start = time.time()
    rows = []
    train_cmaes(CMAESConfig(model=cfg.model, out=f"{cfg.out}/cmaes", generations=cfg.generations))
    rows.append(evaluate(LinearController.load(f"{cfg.out}/cmaes/best"), "Dream-CartPole-v0", cfg.model, taus=(1.0, 1.5), episodes=cfg.episodes, name="CMA-ES linear controller"))
    if cfg.ppo_timesteps:
        train_sb3(SB3Config(algo="ppo", model=cfg.model, out=f"{cfg.out}/ppo", timesteps=cfg.ppo_timesteps))
        rows.append(evaluate(load_agent(f"{cfg.out}/ppo/agent.zip"), "Dream-CartPole-v0", cfg.model, taus=(1.0, 1.5), episodes=cfg.episodes, name="PPO"))
    table = markdown_table(rows)
    md, _ = write_report(rows, f"{cfg.out}/report")
    return f"Agents trained only in Dream-CartPole-v0, scored on the real CartPole-v1 ({time.time() - start:.0f} s):\n\n{table}\n(report: {md})"
