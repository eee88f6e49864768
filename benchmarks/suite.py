"""The "any env, no tuning" suite: for each env, an agent trained only in the dream of N real steps, scored on the
real env, next to the same algorithm trained on the real env with N and with 10N steps, and random play.

One command per row; each writes ``results/suite/<env>__<row>.json`` (the command, commit, machine and date with it),
and ``table`` writes ``results/suite.md`` and ``results/suite.png`` from whatever rows exist::

    python benchmarks/suite.py dream LunarLander-v3                  # gym-dream experiment --env-id, the default family
    python benchmarks/suite.py dream LunarLander-v3 --family rssm    # another family, the same N
    python benchmarks/suite.py real LunarLander-v3                   # SB3 (PPO or SAC, its defaults) on the real env, N steps
    python benchmarks/suite.py real LunarLander-v3 --times 10        # ... 10N steps
    python benchmarks/suite.py random LunarLander-v3
    python benchmarks/suite.py table

Every agent is scored on :data:`EPISODES` real episodes from seed :data:`SEED` on, seeds no run trains or selects on
(the loop's rounds check their agent on seeds 0-9, the experiment's own table uses seeds 0-29). The CI is a
percentile bootstrap of the mean (10,000 resamples). Transfer is (dream - random) / (real@10N - random).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from trainers.experiment.derive import FAMILY, agent_for, slug
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "suite"
#: the development suite and its N (real steps of the dream's whole loop, the same for every family)
SUITE: dict[str, int] = {
    "CartPole-v1": 20_000,
    "LunarLander-v3": 50_000,
    "Pendulum-v1": 10_000,
    "InvertedPendulum-v5": 20_000,
    "HalfCheetah-v5": 100_000,
    "dm_control/cartpole-swingup-v0": 100_000,
}
EPISODES = 30
SEED = 900_000


def bootstrap_ci(x: np.ndarray, level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of the mean of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    means = np.random.default_rng(seed).choice(x, size=(resamples, len(x)), replace=True).mean(axis=1)
    return [float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))]


def summary(returns: np.ndarray) -> dict:
    returns = np.asarray(returns, dtype=np.float64)
    return {"mean": float(returns.mean()), "std": float(returns.std()), "ci95": bootstrap_ci(returns), "episodes": len(returns),
            "seeds": [SEED, SEED + len(returns) - 1], "returns": [round(float(r), 2) for r in returns]}


def write(env_id: str, row: str, record: dict) -> Path:
    from gym_dream.checkpoint import atomic_write_bytes

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{slug(env_id)}__{row}.json"
    atomic_write_bytes(path, (json.dumps({"env_id": env_id, "row": row, **record, **provenance()}, indent=1) + "\n").encode())
    print(f"wrote {path}")
    return path


def run_dream(env_id: str, family: str, steps: int, work: Path, workers: int) -> Path:
    """The whole loop from the env id (``gym-dream experiment --env-id``), then its final agent on the fresh seeds."""
    from trainers.evaluation.evaluate import evaluate
    from trainers.experiment.derive import derive_recipe
    from trainers.experiment.runner import Options, run
    from trainers.experiment.workdir import WorkDir
    from trainers.agents.stored_agent import load_agent

    recipe = derive_recipe(env_id, steps, family=family)
    start = time.time()
    run(recipe, ["all"], Options(work=work, results=work / "results", package=work / "package", workers=workers, ship_in_all=False))
    wall = time.time() - start
    wd = WorkDir(work)
    algo = next(iter(recipe.sb3))
    agent = load_agent(wd.sb3_run(algo, recipe.main_tau) / "best")
    row = evaluate(agent, recipe.dream_id, str(wd.model), taus=(recipe.main_tau,), episodes=EPISODES, dream_episodes=100, seed=SEED,
                   name=f"{algo.upper()} trained in the {family} dream", workers=workers)
    dream = next(iter(row["dream"].values()))
    return write(env_id, f"dream-{family}", {"algo": algo, "family": family, "real_steps": steps, "wall_seconds": round(wall, 1),
                                             "real": summary(np.array(row["real_returns"])), "dream": dream,
                                             "work": str(work), "recipe": recipe.reproduce})


def run_real(env_id: str, steps: int, times: int, workers: int) -> Path:
    """The same SB3 algorithm with its defaults, trained on the real env for ``times`` x N steps."""
    from trainers.data.real_envs import make_real_env
    from trainers.agents.sb3 import algo_class

    probe = make_real_env(env_id)
    algo = agent_for(probe.action_space)
    probe.close()
    cls = algo_class(algo)
    start = time.time()
    model = cls("MlpPolicy", make_real_env(env_id), seed=0, device="cpu")
    model.learn(total_timesteps=steps * times)
    wall = time.time() - start
    returns = []
    for i in range(EPISODES):
        env = make_real_env(env_id)
        obs, _ = env.reset(seed=SEED + i)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, terminated, truncated, _ = env.step(action)
            total += float(r)
            done = terminated or truncated
        returns.append(total)
        env.close()
    return write(env_id, f"real-x{times}", {"algo": algo, "real_steps": steps * times, "wall_seconds": round(wall, 1),
                                            "real": summary(np.array(returns))})


def run_random(env_id: str) -> Path:
    from trainers.data.real_envs import make_real_env

    returns = []
    for i in range(EPISODES):
        env = make_real_env(env_id)
        env.action_space.seed(SEED + i)
        env.reset(seed=SEED + i)
        done, total = False, 0.0
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(r)
            done = terminated or truncated
        returns.append(total)
    return write(env_id, "random", {"real_steps": 0, "real": summary(np.array(returns))})


def _fmt(rec: dict | None) -> str:
    if rec is None:
        return "not run"
    r = rec["real"]
    return f"{r['mean']:.0f} ± {r['std']:.0f} [{r['ci95'][0]:.0f}, {r['ci95'][1]:.0f}]"


def table() -> Path:
    """results/suite.md (and suite.png) from the rows in results/suite/."""
    rows: dict[str, dict[str, dict]] = {}
    for p in sorted(OUT.glob("*.json")):
        rec = json.loads(p.read_text())
        rows.setdefault(rec["env_id"], {})[rec["row"]] = rec
    families = sorted({k[len("dream-"):] for env in rows.values() for k in env if k.startswith("dream-")})
    lines = ["# Any env, no tuning: dream-trained agents against the same algorithm on the real env", "",
             f"Generated by `python benchmarks/suite.py table` from results/suite/*.json (each row's command, commit and machine "
             f"are in its JSON). Real return: mean ± std over {EPISODES} fresh episodes (seeds {SEED}-{SEED + EPISODES - 1}) "
             "[95 % percentile-bootstrap CI of the mean]. Transfer: (dream - random) / (real@10N - random).", "",
             "| " + " | ".join(["env", "N (real steps)", *(f"dream ({f})" for f in families), "real@N", "real@10N", "random",
                                *(f"transfer ({f})" for f in families)]) + " |",
             "|" + "---|" * (2 * len(families) + 5)]
    for env_id, row in rows.items():
        rnd, ten = row.get("random"), row.get("real-x10")
        transfer = []
        for f in families:
            d = row.get(f"dream-{f}")
            if d and rnd and ten and ten["real"]["mean"] != rnd["real"]["mean"]:
                transfer.append(f"{(d['real']['mean'] - rnd['real']['mean']) / (ten['real']['mean'] - rnd['real']['mean']):.0%}")
            else:
                transfer.append("-")
        cells = [env_id, f"{SUITE.get(env_id, '?'):,}", *(_fmt(row.get(f"dream-{f}")) for f in families), _fmt(row.get("real-x1")),
                 _fmt(ten), _fmt(rnd), *transfer]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Commands and wall times:", ""]
    for env_id, row in rows.items():
        for name, rec in sorted(row.items()):
            lines.append(f"- {env_id} {name}: `{rec['command']}` ({rec.get('wall_seconds', 0) / 60:.0f} min, {rec['real_steps']:,} real "
                         f"steps; {rec['machine']['cpu']}, {rec['machine']['threads']} threads, commit {str(rec['commit'])[:8]})")
    path = ROOT / "results" / "suite.md"
    path.write_text("\n".join(lines) + "\n")
    _plot(rows, families)
    print(f"wrote {path}")
    return path


def _plot(rows: dict, families: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*(f"dream-{f}" for f in families), "real-x1", "real-x10", "random"]
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(4 * max(1, len(rows)), 3), squeeze=False)
    for ax, (env_id, row) in zip(axes[0], rows.items()):
        present = [n for n in names if n in row]
        means = [row[n]["real"]["mean"] for n in present]
        errs = np.array([[row[n]["real"]["mean"] - row[n]["real"]["ci95"][0], row[n]["real"]["ci95"][1] - row[n]["real"]["mean"]]
                         for n in present]).T
        ax.bar(range(len(present)), means, yerr=errs)
        ax.set_xticks(range(len(present)), present, rotation=30, ha="right", fontsize=7)
        ax.set_title(env_id, fontsize=9)
    fig.tight_layout()
    fig.savefig(ROOT / "results" / "suite.png", dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("dream", "real", "random", "table"))
    p.add_argument("env_id", nargs="?", help=f"one of {', '.join(SUITE)} (or any env id with --steps)")
    p.add_argument("--family", default=FAMILY, help="dream: the world-model family (default: the derived recipe's)")
    p.add_argument("--steps", type=int, default=None, help="N (default: the suite's N of the env)")
    p.add_argument("--times", type=int, default=1, help="real: train on times x N steps")
    p.add_argument("--work", default=None, help="dream: the work folder (default: runs/suite/<env>-<family>)")
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args()
    if a.what == "table":
        table()
        return
    if a.env_id is None:
        p.error(f"{a.what} needs an env id")
    steps = a.steps or SUITE.get(a.env_id)
    if steps is None:
        p.error(f"{a.env_id} is not in the suite: pass --steps N")
    if a.what == "dream":
        run_dream(a.env_id, a.family, steps, Path(a.work or ROOT / "runs" / "suite" / f"{slug(a.env_id)}-{a.family}"), a.workers)
    elif a.what == "real":
        run_real(a.env_id, steps, a.times, a.workers)
    else:
        run_random(a.env_id)


if __name__ == "__main__":
    main()
