"""Choose a training recipe among SB3 runs by their dream evaluations alone (no real episode).

Each run folder (``gym-dream train ... --out RUNS/<name>``, one recipe each, the same agent seed) holds
``dream_eval_log.csv`` (a row per dream evaluation) and ``agent.json`` (the recipe). A recipe is scored by the mean of its
dream returns from ``--from-step`` on, not by its best evaluation: with 16-32 dream episodes per evaluation the best of
many is mostly luck, and a recipe whose greedy policy collapses between evaluations (DQN holding one action) shows it in
the mean. Unfinished runs are listed and never chosen.

    python benchmarks/ad_hoc/recipe_screen.py runs/dqn-screen --from-step 50000 --out results/runs/doom-sb3/doom_dqn_screen
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


from gym_dream.checkpoint import atomic_write_bytes
from trainers.infra.training_log import read_log


def screen(runs: Path, from_step: int) -> dict:
    rows = []
    for card_path in sorted(runs.glob("*/agent.json")):
        run = card_path.parent
        card = json.loads(card_path.read_text())
        log = read_log(run, "dream_eval")
        later = [r["dream_return_mean"] for r in log if r["step"] >= from_step]
        rows.append({"run": run.name, "finished": bool(card.get("finished")), "recipe": card["recipe"], "tau": card.get("tau"),
                     "evaluations": [[int(r["step"]), round(float(r["dream_return_mean"]), 1)] for r in log],
                     "score": float(np.mean(later)) if later else None, "best": max((float(r["dream_return_mean"]) for r in log), default=None)})
    eligible = [r for r in rows if r["finished"] and r["score"] is not None]
    if not eligible:
        raise SystemExit(f"No finished run with a dream evaluation from step {from_step} on in {runs}.")
    chosen = max(eligible, key=lambda r: r["score"])
    return {"rule": f"the highest mean dream return over the evaluations from step {from_step} on, among finished runs",
            "runs": rows, "chosen": chosen, "command": " ".join(["python", *sys.argv])}


def markdown(result: dict) -> str:
    lines = [f"Rule: {result['rule']}. Chosen: **{result['chosen']['run']}**.", "",
             "| run | action hold | hyper-parameters (net_arch [256, 256] in all) | decisions | mean dream return (rule) | best evaluation | finished |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(result["runs"], key=lambda r: -(r["score"] or -1e9)):
        rec = r["recipe"]
        hp = {k: v for k, v in rec["hparams"].items() if k not in ("policy_kwargs",)}
        score = "-" if r["score"] is None else f"{r['score']:.0f}"
        best = "-" if r["best"] is None else f"{r['best']:.0f}"
        lines.append(f"| {r['run']} | {rec.get('action_hold', 1)} | `{json.dumps(hp)}` | {rec['timesteps']} | {score} | {best} | {r['finished']} |")
    return "\n".join(lines) + f"\n\n```bash\n{result['command']}\n```\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", help="a folder of run folders")
    p.add_argument("--from-step", type=int, default=50_000)
    p.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
    a = p.parse_args()
    result = screen(Path(a.runs), a.from_step)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out.with_name(out.name + ".json"), (json.dumps(result, indent=2) + "\n").encode())
    atomic_write_bytes(out.with_name(out.name + ".md"), markdown(result).encode())
    print(markdown(result))


if __name__ == "__main__":
    main()
