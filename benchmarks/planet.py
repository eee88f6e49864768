"""PlaNet on DeepMind Control (cartpole-swingup, cheetah-run, walker-walk): the CEM planner and SAC trained in the
RSSM's dream, scored on the real task, against the published anchors at equal episodes and a random policy.

    python benchmarks/planet.py                                   # cartpole-swingup, low-dimensional state
    python benchmarks/planet.py --obs pixels --episodes 100       # 64x64 pixels, PlaNet's setting
    python benchmarks/planet.py --obs pixels --skip-loop          # score the loop as far as it got (no more episodes)

Writes results/planet_<task>_<obs>.md/.json and _curve.png; work files in runs/planet-<obs>/ (cartpole-swingup) or
runs/planet-<task>-<obs>/ (resumable: the loop resumes where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from gym_dream.catalogue import by_real_id
from gym_dream.checkpoint import atomic_write_bytes
from trainers.data.real_envs import DMC_ACTION_REPEAT
from trainers.evaluation.evaluate import RandomAgent, stats
from trainers.evaluation.rollout import dream_episode_returns, real_episode_returns
from trainers.agents.stored_agent import load_agent
from trainers.planning.planet_loop import PLANET_PRESETS, PlaNetConfig, run_planet
from trainers.planning.cem import CEM_PRESETS, CEMPlanner
from trainers.agents.sb3 import SB3Config, train_sb3
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]

TASKS = {"cartpole-swingup": "dm_control/cartpole-swingup-v0", "cheetah-run": "dm_control/cheetah-run-v0", "walker-walk": "dm_control/walker-walk-v0"}
#: published real returns from pixels: {task: [(source, episodes, return)]}; one episode = 1,000 control steps
ANCHORS = {
    "cartpole-swingup": [("PlaNet (CURL paper's DMC-100k table)", 100, 297), ("PlaNet (Hafner et al. 2019, Table 1)", 1000, 821),
                         ("DreamerV3 (danijar/dreamerv3 scores/dmc_vision)", 100, 615), ("DreamerV3 (same)", 500, 845)],
    "cheetah-run": [("PlaNet (CURL paper's DMC-100k table)", 100, 138), ("PlaNet (Hafner et al. 2019, Table 1)", 1000, 662)],
    "walker-walk": [("PlaNet (CURL paper's DMC-100k table)", 100, 224), ("PlaNet (Hafner et al. 2019, Table 1)", 1000, 951)],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(TASKS), default="cartpole-swingup")
    p.add_argument("--obs", choices=["state", "pixels"], default="state")
    p.add_argument("--episodes", type=int, default=60, help="real episodes collected by the loop (PlaNet: 1,000)")
    p.add_argument("--preset", default="cpu", choices=sorted(PLANET_PRESETS))
    p.add_argument("--skip-loop", action="store_true", help="score the loop's model as it stands (collect no more episodes)")
    p.add_argument("--sac-steps", type=int, default=30_000, help="SAC steps inside the final model's dream (0: no SAC)")
    p.add_argument("--eval-episodes", type=int, default=10, help="real episodes for the final scores")
    p.add_argument("--workers", type=int, default=1, help="processes for the final real episodes")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads of the loop")
    p.add_argument("--work", default=None)
    p.add_argument("--results", default=str(ROOT / "results" / "planet"), help="where planet_<task>_<obs>.md/.json/_curve.png go")
    a = p.parse_args()
    env_id = TASKS[a.task]
    dream_id = by_real_id(env_id).dream_id
    env_kwargs = {"obs": a.obs}
    work = Path(a.work or ROOT / "runs" / (f"planet-{a.obs}" if a.task == "cartpole-swingup" else f"planet-{a.task}-{a.obs}"))
    stem = Path(a.results) / f"planet_{a.task}_{a.obs}"
    Path(a.results).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not a.skip_loop:
        run_planet(PlaNetConfig(env_id=env_id, env_kwargs=env_kwargs, out=str(work / "loop"), preset=a.preset, episodes=a.episodes,
                                seed_episodes=5, eval_every=5, eval_episodes=3, threads=a.threads))
    loop_s = time.time() - t0
    model = str(work / "loop" / "model")
    log = [json.loads(x) for x in (work / "loop" / "log.jsonl").read_text().splitlines()]
    written = json.loads((Path(model) / "model.json").read_text()).get("training", {}).get("episodes")
    log = [e for e in log if written is None or e["episodes"] <= written]  # the loop as far as the scored model saw it

    t0 = time.time()
    planner = CEMPlanner(gym_dream_model(model), CEM_PRESETS[PLANET_PRESETS[a.preset]["planner"]], seed=1)
    plan_r, plan_n = real_episode_returns(planner, env_id, model, a.eval_episodes, seed=20_000, desc="planner", workers=a.workers, env_kwargs=env_kwargs)
    plan_s = time.time() - t0
    rows = {"planner": {**stats(plan_r), "seconds": round(plan_s, 1), "seconds_per_action": round(plan_s * a.workers / max(1, int(plan_n.sum())), 3)}}
    if a.sac_steps:
        t0 = time.time()
        train_sb3(SB3Config(algo="sac", env_id=dream_id, model=model, out=str(work / "sac"), timesteps=a.sac_steps, num_envs=8,
                            eval_every=5_000, eval_episodes=16, seed=0))
        sac_train_s = time.time() - t0
        sac = load_agent(work / "sac" / "best")
        sac_dream = dream_episode_returns(sac, dream_id, model, 1.0, 32, seed=5)
        sac_r, _ = real_episode_returns(sac, env_id, model, a.eval_episodes, seed=20_000, desc="sac", workers=a.workers, env_kwargs=env_kwargs)
        rows["sac_in_dream"] = {**stats(sac_r), "dream": stats(sac_dream), "train_seconds": round(sac_train_s, 1), "dream_steps": a.sac_steps}
    space = gym_dream_model(model).action_space
    rnd_r, _ = real_episode_returns(RandomAgent(space), env_id, model, a.eval_episodes, seed=20_000, desc="random", env_kwargs=env_kwargs)
    rows["random"] = stats(rnd_r)

    _curve(log, stem.with_name(stem.name + "_curve.png"), rows, ANCHORS.get(a.task, []), a.task, a.obs)
    episodes, steps = log[-1]["episodes"], log[-1]["real_steps"]
    repeat = DMC_ACTION_REPEAT.get(env_id, 1)
    ev = [e for e in log if "eval_return_mean" in e]
    command = "python benchmarks/planet.py " + " ".join(sys.argv[1:])
    lines = [
        f"# PlaNet on {a.task} (DeepMind Control via shimmy), {a.obs}", "",
        f"Command: `{command}` ({platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs, no GPU; "
        f"preset {a.preset}: {PLANET_PRESETS[a.preset]}).",
        f"Observations: **{a.obs}**{' (the low-dimensional state)' if a.obs == 'state' else ' (64x64 RGB frames, 5-bit)'}; "
        f"action repeat {repeat} ({1000 // repeat} agent steps per episode of 1,000 control steps).", "",
        "| agent | real return (mean ± std) | real episodes | notes |", "|---|---|---|---|",
        f"| CEM planner on the RSSM ({episodes} episodes collected, {steps} agent steps = {steps * repeat} control steps) | "
        f"**{rows['planner']['mean']:.0f} ± {rows['planner']['std']:.0f}** | {a.eval_episodes} | {rows['planner']['seconds_per_action']:.2f} s per action |",
    ]
    if "sac_in_dream" in rows:
        r = rows["sac_in_dream"]
        lines.append(f"| SAC trained only in the final RSSM's dream ({a.sac_steps} dream steps) | **{r['mean']:.0f} ± {r['std']:.0f}** | {a.eval_episodes} | "
                     f"dream return {r['dream']['mean']:.0f} ± {r['dream']['std']:.0f} |")
    lines.append(f"| random policy | {rows['random']['mean']:.0f} ± {rows['random']['std']:.0f} | {a.eval_episodes} | |")
    for source, n, value in ANCHORS.get(a.task, []):
        ours = [e for e in ev if e["episodes"] == n]
        here = f"here at {n} episodes: {ours[0]['eval_return_mean']:.0f}" if ours else f"not reached here ({episodes} episodes collected)"
        lines.append(f"| {source}, pixels, after {n} episodes | {value} | | {here} |")
    lines += ["", f"![planner return vs episodes collected]({stem.name}_curve.png)", "",
              "Learning curve (the planner without exploration noise, real episodes per point as logged; collection episodes carry "
              "exploration noise 0.3):", "",
              "| episodes collected | real steps | planner real return (mean ± std) | collection return |", "|---|---|---|---|"]
    for e in log:
        if "eval_return_mean" in e:
            lines.append(f"| {e['episodes']} | {e['real_steps']} | {e['eval_return_mean']:.0f} ± {e['eval_return_std']:.0f} | {e['collect_return']:.0f} |")
    lines += ["", "## Compute", "",
              f"- PlaNet loop: {sum(e['train_seconds'] for e in log) / 60:.0f} min fitting, {sum(e['collect_seconds'] for e in log) / 60:.0f} min collecting "
              f"with the planner ({episodes - 5} loop episodes after 5 random seed episodes; "
              + ("scored as it stood with --skip-loop: the loop ran in its own invocations)" if a.skip_loop else f"this invocation ran it for {loop_s / 60:.0f} min)"),
              f"- final planner episodes: {rows['planner']['seconds'] / 60:.1f} min with {a.workers} worker(s)"]
    if "sac_in_dream" in rows:
        lines.append(f"- SAC in the dream: {rows['sac_in_dream']['train_seconds'] / 60:.1f} min")
    atomic_write_bytes(stem.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(stem.with_suffix(".json"), (json.dumps({"rows": rows, "log": log, "args": vars(a), "command": command, "provenance": provenance(command)}, indent=2) + "\n").encode())
    print("\n".join(lines))


def gym_dream_model(path: str):
    import gym_dream

    return gym_dream.resolve_model(path)


def _curve(log, out: Path, rows, anchors, task: str, obs: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = [e for e in log if "eval_return_mean" in e]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.errorbar([e["episodes"] for e in ev], [e["eval_return_mean"] for e in ev], yerr=[e["eval_return_std"] for e in ev], marker="o", label="CEM planner (real)")
    ax.plot([e["episodes"] for e in log], [e["collect_return"] for e in log], ".", alpha=0.4, label="collection episodes (with noise)")
    for (source, n, value), c in zip(anchors, ["k", "k", "tab:purple", "tab:purple"]):
        ax.plot([n], [value], marker="*", ms=10, ls="", color=c, label=f"{source.split(' (')[0]}, {n} ep: {value}")
    ax.axhline(rows["random"]["mean"], color="grey", ls=":", label="random policy")
    if "sac_in_dream" in rows:
        ax.axhline(rows["sac_in_dream"]["mean"], color="tab:red", ls="-.", label="SAC in the dream (real)")
    ax.set_xscale("symlog", linthresh=100)
    ax.set_xlabel("real episodes collected")
    ax.set_ylabel("return")
    ax.set_title(f"{task}, {obs}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
