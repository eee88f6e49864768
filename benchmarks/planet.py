"""PlaNet on DeepMind Control cartpole-swingup: the CEM planner and SAC trained in the RSSM's dream,
scored on the real task, against PlaNet's published 821 (after 1,000 episodes) and a random policy.

    python benchmarks/planet.py                     # low-dimensional state (the CPU's fast path)
    python benchmarks/planet.py --obs pixels        # 64x64 pixels, PlaNet's setting (slow on a CPU)

Writes results/planet.md/.json and results/planet_curve.png; work files in runs/planet-<obs>/ (resumable).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from gym_dream.checkpoint import atomic_write_bytes  # noqa: E402
from trainers.evaluate import RandomAgent, dream_episode_returns, load_agent, real_episode_returns, stats  # noqa: E402
from trainers.planet import PLANET_PRESETS, PlaNetConfig, run_planet  # noqa: E402
from trainers.planner import CEM_PRESETS, CEMPlanner  # noqa: E402
from trainers.sb3 import SB3Config, train_sb3  # noqa: E402

ENV = "dm_control/cartpole-swingup-v0"
DREAM = "Dream-CartpoleSwingup-v0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obs", choices=["state", "pixels"], default="state")
    p.add_argument("--episodes", type=int, default=60, help="real episodes collected by the loop (PlaNet: 1,000)")
    p.add_argument("--preset", default="cpu", choices=sorted(PLANET_PRESETS))
    p.add_argument("--sac-steps", type=int, default=30_000, help="SAC steps inside the final model's dream")
    p.add_argument("--eval-episodes", type=int, default=10, help="real episodes for the final scores")
    p.add_argument("--work", default=None)
    p.add_argument("--results", default=str(ROOT / "results"), help="where planet.md/.json/_curve.png go")
    a = p.parse_args()
    work = Path(a.work or ROOT / "runs" / f"planet-{a.obs}")
    Path(a.results).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    summary = run_planet(PlaNetConfig(env_id=ENV, env_kwargs={"obs": a.obs}, out=str(work / "loop"), preset=a.preset, episodes=a.episodes,
                                      seed_episodes=5, eval_every=5, eval_episodes=3, threads=2))
    loop_s = time.time() - t0
    model = str(work / "loop" / "model")
    log = [json.loads(x) for x in (work / "loop" / "log.jsonl").read_text().splitlines()]

    t0 = time.time()
    planner = CEMPlanner(gym_dream_model(model), CEM_PRESETS[PLANET_PRESETS[a.preset]["planner"]], seed=1)
    plan_r, plan_n = real_episode_returns(planner, ENV, model, a.eval_episodes, seed=20_000, desc="planner")
    plan_s = time.time() - t0
    t0 = time.time()
    train_sb3(SB3Config(algo="sac", env_id=DREAM, model=model, out=str(work / "sac"), timesteps=a.sac_steps, num_envs=8,
                        eval_every=5_000, eval_episodes=16, seed=0))
    sac_train_s = time.time() - t0
    sac = load_agent(work / "sac" / "best")
    sac_dream = dream_episode_returns(sac, DREAM, model, 1.0, 32, seed=5)
    sac_r, _ = real_episode_returns(sac, ENV, model, a.eval_episodes, seed=20_000, desc="sac")
    space = gym.spaces.Box(-1.0, 1.0, (1,), np.float64)
    rnd_r, _ = real_episode_returns(RandomAgent(space), ENV, model, a.eval_episodes, seed=20_000, desc="random")

    rows = {
        "planner": {**stats(plan_r), "seconds": round(plan_s, 1)},
        "sac_in_dream": {**stats(sac_r), "dream": stats(sac_dream), "train_seconds": round(sac_train_s, 1)},
        "random": stats(rnd_r),
    }
    _curve(log, Path(a.results) / "planet_curve.png", rows)
    episodes, steps = log[-1]["episodes"], log[-1]["real_steps"]
    lines = [
        "# PlaNet on cartpole-swingup (DeepMind Control via shimmy)", "",
        f"Reproduce: `python benchmarks/planet.py --obs {a.obs} --episodes {a.episodes} --preset {a.preset}` (2-core CPU, no GPU; preset: {PLANET_PRESETS[a.preset]}).",
        f"Observations: **{a.obs}**{' (the low-dimensional state: the fast path, not PlaNet pixel setting)' if a.obs == 'state' else ' (64x64, 5-bit)'}; "
        "action repeat 8 (125 agent steps per episode).", "",
        f"| agent | real return (mean ± std) | real episodes | notes |", "|---|---|---|---|",
        f"| CEM planner on the RSSM ({episodes} episodes collected, {steps} agent steps) | **{rows['planner']['mean']:.0f} ± {rows['planner']['std']:.0f}** | {a.eval_episodes} | "
        f"{rows['planner']['seconds'] / max(1, int(plan_n.sum())):.2f} s per action |",
        f"| SAC trained only in the final RSSM's dream ({a.sac_steps} dream steps) | **{rows['sac_in_dream']['mean']:.0f} ± {rows['sac_in_dream']['std']:.0f}** | {a.eval_episodes} | "
        f"dream return {rows['sac_in_dream']['dream']['mean']:.0f} ± {rows['sac_in_dream']['dream']['std']:.0f} |",
        f"| random policy | {rows['random']['mean']:.0f} ± {rows['random']['std']:.0f} | {a.eval_episodes} | |",
        "| PlaNet (paper, pixels, after 1,000 episodes) | 821 | | Hafner et al. 2019, Table 1 |", "",
        "![planner return vs episodes collected](planet_curve.png)", "",
        "## Compute", "",
        f"- PlaNet loop: {loop_s / 60:.0f} min for this invocation ({episodes} episodes; "
        f"{sum(e['train_seconds'] for e in log) / 60:.0f} min fitting, {sum(e['collect_seconds'] for e in log) / 60:.0f} min collecting with the planner)",
        f"- SAC in the dream: {sac_train_s / 60:.1f} min; machine: {platform.machine()}, {os.cpu_count()} cores, no GPU", "",
        "Evaluation returns during the loop (planner without exploration noise, 3 real episodes each): "
        + ", ".join(f"{e['episodes']}: {e['eval_return_mean']:.0f}" for e in log if "eval_return_mean" in e),
    ]
    atomic_write_bytes(Path(a.results) / "planet.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(Path(a.results) / "planet.json", (json.dumps({"rows": rows, "log": log, "args": vars(a)}, indent=2) + "\n").encode())
    print("\n".join(lines))


def gym_dream_model(path: str):
    import gym_dream

    return gym_dream.resolve_model(path)


def _curve(log, out: Path, rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [e for e in log if "eval_return_mean" in e]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.errorbar([e["episodes"] for e in ev], [e["eval_return_mean"] for e in ev], yerr=[e["eval_return_std"] for e in ev], marker="o", label="CEM planner (real)")
    ax.plot([e["episodes"] for e in log], [e["collect_return"] for e in log], ".", alpha=0.4, label="collection episodes (with noise)")
    ax.axhline(821, color="k", ls="--", label="PlaNet, 1,000 episodes (paper)")
    ax.axhline(rows["random"]["mean"], color="grey", ls=":", label="random policy")
    ax.axhline(rows["sac_in_dream"]["mean"], color="tab:red", ls="-.", label="SAC in the dream (real)")
    ax.set_xlabel("real episodes collected")
    ax.set_ylabel("return")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
