"""Dreams from offline data: a dataset recorded by a trained (non-random) policy, written as a Minari dataset, a dream
fitted only from it, an agent trained only in that dream, scored on the real env; against the same pipeline on a
dataset of as many random steps.

    python benchmarks/offline.py cartpole all       # or: behaviour data fit train evaluate report, one at a time
    python benchmarks/offline.py pendulum all

Stages (each skips what is already on disk, so a re-run resumes; work in runs/offline/<env>/):

1. behaviour: an SB3 agent trained on the REAL env (PPO for CartPole-v1, SAC for Pendulum-v1), scored on 20 real episodes;
2. data: `gym-dream collect` with that agent taking a random action with probability ``epsilon`` (the offline dataset)
   and with the random policy, the same number of steps, each also written as a local Minari dataset
   (MINARI_DATASETS_PATH=runs/offline/minari);
3. fit: `gym-dream fit --minari ID --family mdnrnn` on each Minari dataset (nothing else: the shards are re-made from Minari);
4. train: a linear controller trained with CMA-ES only in each dream (Pendulum: also SB3 SAC);
5. evaluate: each controller on the real env, real seeds 100000.. (never used for collection or training);
6. report: results/offline.md and results/offline.json (the markdown table and the commands).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "offline"
os.environ.setdefault("MINARI_DATASETS_PATH", str(WORK / "minari"))  # before minari is imported

import gymnasium as gym  # noqa: E402

import gym_dream  # noqa: E402,F401
from gym_dream.checkpoint import atomic_write_bytes  # noqa: E402
from trainers.infra.provenance import provenance  # noqa: E402

TASKS = {
    "cartpole": dict(env_id="CartPole-v1", dream_id="Dream-CartPole-v0", algo="ppo", agent_steps=40_000, steps=10_000, epsilon=0.25,
                     cmaes=dict(generations=20, popsize=32, rollouts=8), kinds=("behaviour", "random", "mix")),
    # a linear controller is too weak for the swing-up (both rows near the random policy), so SAC is trained in the dreams too,
    # with about as many updates as the behaviour SAC got on the real env (8k: 32k dream steps in 4 dreams)
    "pendulum": dict(env_id="Pendulum-v1", dream_id="Dream-Pendulum-v0", algo="sac", agent_steps=8_000, steps=10_000, epsilon=0.25,
                     cmaes=dict(generations=30, popsize=32, rollouts=8), sb3=dict(algo="sac", timesteps=32_000, num_envs=4)),
}
EVAL_SEED, EVAL_EPISODES, BEHAVIOUR_EPISODES = 100_000, 30, 20


def _dataset_ids(name: str, t: dict) -> dict[str, str]:
    ids = {"behaviour": f"gym-dream/{name}-{t['algo']}-eps{round(100 * t['epsilon'])}-v0", "random": f"gym-dream/{name}-random-v0",
           "mix": f"gym-dream/{name}-half-{t['algo']}-half-random-v0"}
    return {k: ids[k] for k in _kinds(t)}


def _kinds(t: dict) -> tuple[str, ...]:
    """The datasets of a task: behaviour, random and (CartPole) mix: half the steps by the behaviour policy, half random."""
    return t.get("kinds", ("behaviour", "random"))


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def stage_behaviour(name: str, t: dict) -> None:
    """The data-collecting agent, trained on the real env (the only stage that trains on it)."""
    from stable_baselines3 import PPO, SAC

    w = WORK / name
    path = w / "behaviour.zip"
    if path.is_file():
        return
    start = time.time()
    env = gym.make(t["env_id"])
    cls = {"ppo": PPO, "sac": SAC}[t["algo"]]
    agent = cls("MlpPolicy", env, seed=0, verbose=0, device="cpu")
    agent.learn(t["agent_steps"])
    w.mkdir(parents=True, exist_ok=True)
    agent.save(path)
    seconds = time.time() - start
    returns = _real_returns(lambda o: agent.predict(o, deterministic=True)[0], t["env_id"], BEHAVIOUR_EPISODES, seed=EVAL_SEED + 50_000)
    _json(w / "behaviour.json", {"algo": t["algo"], "real_steps": t["agent_steps"], "seconds": round(seconds, 1),
                                 "real_return": _stats(returns), "real_seeds": [EVAL_SEED + 50_000, EVAL_SEED + 50_000 + BEHAVIOUR_EPISODES - 1]})


def _real_returns(act, env_id: str, episodes: int, seed: int) -> np.ndarray:
    env, out = gym.make(env_id), []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total += float(r)
            done = term or trunc
        out.append(total)
    return np.array(out)


def _stats(x) -> dict:
    x = np.asarray(x, np.float64)
    return {"mean": float(x.mean()), "std": float(x.std()), "episodes": int(len(x))}


def _behaviour_label(t: dict) -> str:
    """The collecting policy's name in dataset.json, the Minari dataset's algorithm_name and the model card."""
    return f"sb3-{t['algo']}-epsilon{t['epsilon']}"


def _behaviour_policy(name: str, t: dict):
    """collect()'s policy factory: the real-env agent, with a uniformly random action with probability epsilon."""
    from stable_baselines3 import PPO, SAC

    agent = {"ppo": PPO, "sac": SAC}[t["algo"]].load(WORK / name / "behaviour.zip", device="cpu")

    def factory(space, n, seed):
        rng = np.random.default_rng(seed)
        space = copy.deepcopy(space)
        space.seed(int(rng.integers(2**31)))

        def act(obs):
            a = agent.predict(obs, deterministic=True)[0]
            for i in range(len(obs)):
                if rng.random() < t["epsilon"]:
                    a[i] = space.sample()
            return a

        return act

    return factory


def stage_data(name: str, t: dict) -> None:
    import minari

    from trainers.data.collect import CollectConfig, collect
    from trainers.data.dataset import EpisodeDataset

    ids = _dataset_ids(name, t)
    local = minari.list_local_datasets()
    summary = {}
    behaviour, label = _behaviour_policy(name, t), _behaviour_label(t)
    for kind in _kinds(t):
        out = WORK / name / f"data-{kind}"
        if ids[kind] not in local:
            if kind == "mix":  # the first half by the behaviour policy, then the same folder grown to the budget at random
                collect(CollectConfig(env_id=t["env_id"], out=str(out), steps=t["steps"] // 2, workers=1, seed=3, policy=label),
                        policy_factory=behaviour)
            collect(CollectConfig(env_id=t["env_id"], out=str(out), steps=t["steps"], workers=1, seed={"behaviour": 1, "random": 2, "mix": 4}[kind],
                                  policy=label if kind == "behaviour" else "random", minari=ids[kind]),
                    policy_factory=behaviour if kind == "behaviour" else None)
        ds = EpisodeDataset(out)
        last = ds.act_start + ds.lengths - 1
        returns = np.array([float(ds.rewards[ds.act_start[i]: last[i] + 1].sum()) for i in range(len(ds))])
        # episodes that ended by themselves (terminated, or at the env's time limit), not those the step budget cut
        whole = ds.terminated[last] | (ds.lengths == gym.spec(t["env_id"]).max_episode_steps)
        summary[kind] = {"minari_id": ids[kind], "episodes": len(ds), "steps": ds.steps, "episode_return": _stats(returns[whole] if whole.any() else returns),
                         "terminated_episodes": int(ds.terminated[last].sum())}
    _json(WORK / name / "data.json", summary)


def stage_fit(name: str, t: dict) -> None:
    from trainers.fit.dispatch import FitConfig, fit

    for kind, did in _dataset_ids(name, t).items():
        out = WORK / name / f"model-{kind}"
        if (out / "model.json").is_file():
            continue
        start = time.time()
        fit(FitConfig(minari=did, out=str(out), family="mdnrnn", seed=0, extra_card={"description": f"{t['env_id']} MDN-RNN fitted only from the Minari dataset {did}",
                                                                     "reproduce": f"python benchmarks/offline.py {name} fit"}))
        _json(out.with_name(out.name + ".fit.json"), {"seconds": round(time.time() - start, 1)})


def stage_train(name: str, t: dict) -> None:
    from trainers.agents.cmaes import CMAESConfig, train_cmaes

    for kind in _kinds(t):
        out = WORK / name / f"cmaes-{kind}"
        if (out / "best" / "controller.json").is_file() and json.loads((out / "best" / "controller.json").read_text()).get("generation", 0) >= t["cmaes"]["generations"]:
            continue
        train_cmaes(CMAESConfig(env_id=t["dream_id"], model=str(WORK / name / f"model-{kind}"), out=str(out), seed=0, **t["cmaes"]))
    if "sb3" in t:
        from trainers.agents.sb3 import SB3Config, train_sb3

        for kind in ("behaviour", "random"):
            out = WORK / name / f"{t['sb3']['algo']}-{kind}"
            if (out / "best" / "policy.json").is_file() and (out / "done.json").is_file():
                continue
            start = time.time()
            train_sb3(SB3Config(env_id=t["dream_id"], model=str(WORK / name / f"model-{kind}"), out=str(out), seed=0,
                                eval_every=8_000, eval_episodes=16, **t["sb3"]))
            _json(out / "done.json", {"seconds": round(time.time() - start, 1)})


def stage_evaluate(name: str, t: dict) -> None:
    from trainers.evaluation.evaluate import evaluate
    from trainers.agents.stored_agent import load_agent

    path = WORK / name / "evaluate.json"
    rows = json.loads(path.read_text()) if path.is_file() else {}
    agents = [("cmaes", "CMA-ES linear")] + ([(t["sb3"]["algo"], f"SB3 {t['sb3']['algo'].upper()} ({t['sb3']['timesteps'] // 1000}k dream steps)")] if "sb3" in t else [])
    for agent, label in agents:
        for kind in _kinds(t):
            key = kind if agent == "cmaes" else f"{agent}-{kind}"
            if key in rows:
                continue
            model = str(WORK / name / f"model-{kind}")
            rows[key] = evaluate(load_agent(WORK / name / f"{agent}-{kind}" / "best"), t["dream_id"], model, taus=(1.0,), episodes=EVAL_EPISODES,
                                 seed=EVAL_SEED, name=f"{label} in the dream of the {kind} dataset")
            rows[key]["dream_agent"] = label
            _json(path, rows)


def stage_report(names: list[str]) -> None:
    lines = [
        "# Dreams from offline data (Minari)", "",
        "Each row: a dataset of real steps written as a local **Minari** dataset, a world model (MDN-RNN, default vector preset) "
        "fitted **only** from that Minari dataset (`gym-dream fit --minari ID --family mdnrnn`), an agent (a linear controller trained with CMA-ES; for Pendulum also SAC) trained **only** "
        "in the dream, scored on the real env through `DreamObservation` "
        f"(real seeds {EVAL_SEED}–{EVAL_SEED + EVAL_EPISODES - 1}, used by nothing else). The *behaviour* dataset is recorded by an SB3 "
        "agent trained on the real env, taking a uniformly random action with probability epsilon; the *random* dataset holds as many "
        "steps of the random policy. Machine: 2 shared CPU cores, OMP_NUM_THREADS=1.", "",
        "| env | dataset (Minari id) | steps (episodes) | dataset episode return | agent, trained only in the dream | dream return (tau 1) | **real return ± std** | real episodes | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    payload = {}
    for name in names:
        w = WORK / name
        if not (w / "evaluate.json").is_file():
            continue
        t = TASKS[name]
        data, ev, beh = (json.loads((w / f).read_text()) for f in ("data.json", "evaluate.json", "behaviour.json"))
        payload[name] = {"task": t, "behaviour_agent": beh, "data": data, "evaluate": ev}
        for key, e in ev.items():
            kind = key.split("-")[-1]
            d, dream = data[kind], e["dream"]["1.0"]
            lines.append(f"| {t['env_id']} | `{d['minari_id']}` | {d['steps']} ({d['episodes']}) | {d['episode_return']['mean']:.1f} ± "
                         f"{d['episode_return']['std']:.1f} | {e.get('dream_agent', 'CMA-ES linear')} | {dream['mean']:.1f} ± {dream['std']:.1f} | "
                         f"**{e['real']['mean']:.1f} ± {e['real']['std']:.1f}** | {e['real']['episodes']} | `python benchmarks/offline.py {name} all` |")
    lines += ["", "The behaviour agents (trained on the real env; they only record the data):", "",
              "| env | agent | real training steps | real return ± std (greedy) | real episodes |", "|---|---|---|---|---|"]
    for name, p in payload.items():
        b = p["behaviour_agent"]
        lines.append(f"| {p['task']['env_id']} | SB3 {b['algo'].upper()}, then epsilon {p['task']['epsilon']} random actions | {b['real_steps']} | "
                     f"{b['real_return']['mean']:.1f} ± {b['real_return']['std']:.1f} | {b['real_return']['episodes']} |")
    atomic_write_bytes(ROOT / "results" / "offline_table.md", ("\n".join(lines) + "\n").encode())
    _json(ROOT / "results" / "offline.json", {**payload, "provenance": provenance()})
    print("\n".join(lines))


STAGES = {"behaviour": stage_behaviour, "data": stage_data, "fit": stage_fit, "train": stage_train, "evaluate": stage_evaluate}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=[*TASKS, "both"])
    p.add_argument("stages", nargs="+", choices=[*STAGES, "report", "all"])
    a = p.parse_args()
    names = list(TASKS) if a.task == "both" else [a.task]
    stages = [*STAGES, "report"] if "all" in a.stages else a.stages
    for name in names:
        for s in stages:
            if s != "report":
                print(f"== {name}: {s}", flush=True)
                STAGES[s](name, TASKS[name])
    if "report" in stages:
        stage_report(list(TASKS))


if __name__ == "__main__":
    main()
