"""The README's main job, on the shipped models: train agents only in the CartPole dream and score them
on the real CartPole-v1; then score the controller that was trained only in the shipped CarRacing dream
on real CarRacing-v3 tracks. Prints the dream-vs-real tables (a few minutes on 2 CPU cores)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from gym_dream.agents import agent_path
from gym_dream.envs.core import check_tau, tau_name
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import evaluate, markdown_table, write_report
from trainers.fit.presets import check_ranges
from trainers.agents.stored_agent import load_agent
from trainers.agents.sb3 import SB3Config, train_sb3

#: the valid range of each numeric option (trainers.fit.presets.check_ranges): 0 skips PPO or CarRacing
DEMO_RANGES: dict[str, str] = {"episodes": "integer >= 1", "generations": "integer >= 1", "workers": "integer >= 1",
                               "ppo_timesteps": "integer >= 0", "carracing_episodes": "integer >= 0"}


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
    carracing_agent: str = "cmaes-selected"
    """the CMA-ES controller shipped with the CarRacing model (its name in `gym-dream list`, or a directory): by default
    the headline one, trained only in the dream and chosen by the report's protocol (results/carracing.md); each tau's
    dream pick ships as cmaes-tau<tau>"""
    carracing_episodes: int = 10
    """real CarRacing-v3 tracks to score it on (0 skips CarRacing)"""
    workers: int = 2
    """processes for the real CarRacing episodes"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count now, before any folder is made (DEMO_RANGES)."""
        check_ranges(self, DEMO_RANGES, "demo")


def run_demo(cfg: DemoConfig) -> str:
    start = time.time()
    rows = []
    train_cmaes(CMAESConfig(model=cfg.model, out=f"{cfg.out}/cmaes", generations=cfg.generations))
    rows.append(evaluate(LinearController.load(f"{cfg.out}/cmaes/best"), "Dream-CartPole-v0", cfg.model, taus=(1.0, 1.5), episodes=cfg.episodes, name="CMA-ES linear controller"))
    if cfg.ppo_timesteps:
        train_sb3(SB3Config(algo="ppo", model=cfg.model, out=f"{cfg.out}/ppo", timesteps=cfg.ppo_timesteps))
        rows.append(evaluate(load_agent(f"{cfg.out}/ppo/best"), "Dream-CartPole-v0", cfg.model, taus=(1.0, 1.5), episodes=cfg.episodes, name="PPO"))
    table = markdown_table(rows)
    md, _ = write_report(rows, f"{cfg.out}/report")
    text = f"Agents trained only in Dream-CartPole-v0, scored on the real CartPole-v1 ({time.time() - start:.0f} s):\n\n{table}\n(report: {md})"
    if cfg.carracing_episodes:
        text += "\n\n" + carracing_part(cfg)
    return text


def carracing_part(cfg: DemoConfig) -> str:
    start = time.time()
    try:
        import Box2D  # noqa: F401
    except ImportError:
        return 'CarRacing skipped: the real CarRacing-v3 needs Box2D: pip install "gym-dream[box2d]".'
    agent = LinearController.load(agent_path(cfg.carracing_agent, model="carracing"))
    tau = check_tau(agent.card.get("tau", 1.15))
    row = evaluate(agent, "Dream-CarRacing-v0", "carracing", taus=(tau,), episodes=cfg.carracing_episodes, dream_episodes=100,
                   name=f"CMA-ES linear controller trained in the shipped dream at tau {tau_name(tau)}", workers=cfg.workers)
    rows = [row]
    md, _ = write_report(rows, f"{cfg.out}/carracing")
    return (f"The controller trained only in Dream-CarRacing-v0 (shipped model 'carracing'), on {cfg.carracing_episodes} real "
            f"CarRacing-v3 tracks ({time.time() - start:.0f} s; 100 tracks: results/carracing.md):\n\n{markdown_table(rows)}\n(report: {md})")
