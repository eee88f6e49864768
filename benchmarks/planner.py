"""Real return against model steps per decision: the CEM planner and its sample-efficient variants (iCEM, MPPI) on the
shipped dmc-cartpole-swingup RSSM (pixels), acting in the real DeepMind Control task.

    python benchmarks/planner.py cem:planet@3 cpu@8 icem@8 icem-small@8 mppi@8      # rows: PRESET[+FIELD=VALUE...][@EPISODES]
    python benchmarks/planner.py "icem+noise_beta=1.0@8"                              # a preset with options changed
    python benchmarks/planner.py --timing 10 icem cpu                                  # CPU seconds per decision, 10 decisions each
    python benchmarks/planner.py --table                                               # the markdown table of results/planner.json

Every row plays the same real episodes (seeds --seed, --seed + 1, ...), each with a fresh planner seeded by the
episode's seed, one torch thread. A row already in the JSON with as many episodes, the same seeds and the same config
is skipped (the run resumes); the JSON is written after every row. ``cem:`` before a preset is optional (CEM's presets are planet, cpu, tiny; the others:
trainers/planning/icem.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch

import gym_dream
from gym_dream.checkpoint import atomic_write_bytes
from trainers.evaluation.evaluate import stats
from trainers.evaluation.rollout import real_episodes
from trainers.infra.provenance import provenance
from trainers.planning.icem import PLANNER_PRESETS, make_planner, model_steps

ROOT = Path(__file__).resolve().parents[1]
MODEL = "dmc-cartpole-swingup"


def config_of(spec: str):
    """``PRESET[+FIELD=VALUE...]`` as a planner config (values parsed as JSON, else kept as strings)."""
    name, *changes = spec.removeprefix("cem:").split("+")
    if name not in PLANNER_PRESETS:
        raise SystemExit(f"Unknown planner preset {name!r}; choose from {sorted(PLANNER_PRESETS)}.")
    fields = {}
    for change in changes:
        key, _, value = change.partition("=")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    return dataclasses.replace(PLANNER_PRESETS[name], **fields)


def run_row(spec: str, episodes: int, seed: int, model_name: str = MODEL) -> dict:
    """``episodes`` real episodes planned with ``spec``; returns, model steps and seconds per decision."""
    cfg = config_of(spec)
    model = gym_dream.resolve_model(model_name)
    planners = [make_planner(model, cfg, seed=s) for s in range(seed, seed + episodes)]
    planning = [0.0, 0.0]  # wall seconds, CPU seconds of this process (one torch thread: not inflated by other jobs)
    for p in planners:
        plan = p.plan

        def timed(state, plan=plan):
            t, c = time.perf_counter(), time.process_time()
            try:
                return plan(state)
            finally:
                planning[0] += time.perf_counter() - t
                planning[1] += time.process_time() - c

        p.plan = timed
    t0 = time.time()
    env_id = model.card["env"]["id"]  # the real env (and its kwargs: pixels or state) as the model's card records it
    eps = real_episodes(planners, env_id, model_name, list(range(seed, seed + episodes)), desc=spec)
    wall = time.time() - t0
    decisions = int(sum(e.length for e in eps))
    counted = [p.model_steps for p in planners if hasattr(p, "model_steps")]
    returns = [e.ret for e in eps]
    return {"spec": spec, "agent": f"planner {spec}", "env_id": env_id, "config": dataclasses.asdict(cfg), "kind": type(planners[0]).__name__,
            "real": {**stats(np.asarray(returns)), "returns": returns}, "seeds": [seed, seed + episodes - 1],
            "model_steps_per_decision": model_steps(cfg),
            "model_steps_per_decision_counted": round(sum(counted) / decisions, 1) if counted else model_steps(cfg),
            "decisions": decisions, "seconds_per_decision": round(planning[0] / decisions, 4),
            "cpu_seconds_per_decision": round(planning[1] / decisions, 4), "wall_seconds": round(wall, 1),
            "provenance": provenance()}


def time_decisions(spec: str, decisions: int, model_name: str = MODEL) -> dict:
    """CPU seconds per decision of ``spec`` (one torch thread, process time: what other jobs on the machine do not
    inflate), planning from the model's start states; the first decision is a warm-up and not counted."""
    model = gym_dream.resolve_model(model_name)
    planner = make_planner(model, config_of(spec), seed=0)
    with torch.inference_mode():
        states = [model.initial_state(1, planner.generator) for _ in range(decisions + 1)]
    planner.plan(states[0])
    t = time.process_time()
    for state in states[1:]:
        planner.plan(state)
    return {"cpu_seconds_per_decision": round((time.process_time() - t) / decisions, 4), "decisions": decisions, "provenance": provenance()}


def difference(a: list[float], b: list[float], resamples: int = 10_000) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` with a 95 % percentile bootstrap interval (episodes resampled within each row,
    a fixed seed: the table is reproducible)."""
    rng = np.random.default_rng(0)
    a, b = np.asarray(a), np.asarray(b)
    boot = rng.choice(a, (resamples, len(a))).mean(1) - rng.choice(b, (resamples, len(b))).mean(1)
    return float(a.mean() - b.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def table(doc: dict, reference: str = "cpu") -> str:
    rows = sorted(doc["rows"].values(), key=lambda r: -r["model_steps_per_decision"])
    cpu = doc["provenance"]["machine"].get("cpu", "?")
    ref = doc["rows"].get(reference)
    lines = [f"| planner | real return (mean ± std) | episodes | model steps per decision | fewer than `{reference}` | "
             f"return minus `{reference}`'s [95% CI] | CPU seconds per decision ({cpu}, 1 thread) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu_s = doc.get("timing", {}).get(r["spec"], {}).get("cpu_seconds_per_decision", "-")
        steps = r["model_steps_per_decision_counted"]
        fewer, diff = "-", "-"
        if ref is not None:
            fewer = f"{ref['model_steps_per_decision'] / steps:.1f}x"
            if r is not ref:
                d, low, high = difference(r["real"]["returns"], ref["real"]["returns"])
                diff = f"{d:+.0f} [{low:+.0f}, {high:+.0f}]"
        lines.append(f"| `{r['spec']}` | {r['real']['mean']:.0f} ± {r['real']['std']:.0f} | {r['real']['episodes']} | "
                     f"{steps:,.0f} | {fewer} | {diff} | {cpu_s} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", nargs="*", help="PRESET[+FIELD=VALUE...][@EPISODES]")
    p.add_argument("--episodes", type=int, default=5, help="episodes of a row that does not say")
    p.add_argument("--seed", type=int, default=40_000, help="first real episode seed (fresh: planet.md used 20000-20009)")
    p.add_argument("--model", default=MODEL, help="the model planned in (a name or directory; its card names the real env)")
    p.add_argument("--out", default=str(ROOT / "results" / "planner.json"))
    p.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    p.add_argument("--reference", default="cpu", help="the row the table compares every other row with")
    p.add_argument("--timing", type=int, default=0, help="instead of episodes: CPU seconds per decision of each row over this many decisions")
    p.add_argument("--merge", nargs="*", default=[], help="add the rows and timings of these JSON files (written with --out) to --out")
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.exists() else {"rows": {}}
    if a.table:
        print(table(doc, a.reference))
        return
    for other in a.merge:  # rows measured by another process with --out elsewhere, each row with its own provenance
        part = json.loads(Path(other).read_text())
        doc["rows"].update(part.get("rows", {}))
        doc.setdefault("timing", {}).update(part.get("timing", {}))
        doc.setdefault("merged", []).append(other)
    if a.merge:
        doc.setdefault("provenance", provenance())
        atomic_write_bytes(out, (json.dumps(doc, indent=1) + "\n").encode())
    if a.timing:
        for row in a.rows:
            spec = row.partition("@")[0].removeprefix("cem:")
            doc.setdefault("timing", {})[spec] = time_decisions(spec, a.timing)
            print(f"{spec}: {doc['timing'][spec]['cpu_seconds_per_decision']} CPU s per decision", flush=True)
            atomic_write_bytes(out, (json.dumps(doc, indent=1) + "\n").encode())
        return
    for row in a.rows:
        spec, _, n = row.partition("@")
        spec, episodes = spec.removeprefix("cem:"), int(n or a.episodes)
        old = doc["rows"].get(spec)
        same = old and old["config"] == dataclasses.asdict(config_of(spec)) and old["seeds"][0] == a.seed
        if same and old["real"]["episodes"] >= episodes:
            print(f"{spec}: already measured ({old['real']['episodes']} episodes)", flush=True)
            continue
        r = run_row(spec, episodes, a.seed, a.model)
        print(f"{spec}: {r['real']['mean']:.1f} ± {r['real']['std']:.1f} ({episodes} episodes), {r['model_steps_per_decision_counted']} "
              f"model steps and {r['seconds_per_decision']} s per decision", flush=True)
        doc["rows"][spec] = r
        doc.update(model=a.model, env_id=r["env_id"], provenance=provenance(), command="python benchmarks/planner.py " + " ".join(sys.argv[1:]))
        atomic_write_bytes(out, (json.dumps(doc, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
