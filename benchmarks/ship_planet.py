"""Ship a PlaNet loop's model as the bundled default of its Dream-* id (fp16 weights + card, package data).

    python benchmarks/ship_planet.py runs/planet-pixels/loop/model --task cartpole-swingup \
        --scores results/planet/planet_cartpole-swingup_pixels.json

Writes gym_dream/bundled/dmc_<task>/ (model.json, model.safetensors, __init__.py); the entry point
``dmc-<task> = "gym_dream.bundled.dmc_<task>"`` in pyproject.toml makes it installed model data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from gym_dream.catalogue import by_real_id
from gym_dream.checkpoint import atomic_write_bytes
from trainers.export.package import stage_model_dir

ROOT = Path(__file__).resolve().parents[1]

TASKS = {"cartpole-swingup": "dm_control/cartpole-swingup-v0", "cheetah-run": "dm_control/cheetah-run-v0", "walker-walk": "dm_control/walker-walk-v0"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the loop's model directory")
    ap.add_argument("--task", choices=sorted(TASKS), default="cartpole-swingup")
    ap.add_argument("--scores", default=None, help="a results JSON of benchmarks/planet.py whose rows go into the card's scores")
    a = ap.parse_args()
    known = by_real_id(TASKS[a.task])
    dest = ROOT / "gym_dream" / "bundled" / known.model.replace("-", "_")
    stage_model_dir(a.model, dest, known.dream_id, max_episode_steps=known.max_episode_steps, half=True)
    if a.scores:
        res = json.loads(Path(a.scores).read_text())
        card = json.loads((dest / "model.json").read_text())
        card["scores"] = {name: f"{r['mean']:.1f} ± {r['std']:.1f} over {r['episodes']} real episodes" for name, r in res["rows"].items()}
        card["scores"]["source"] = res.get("command", "benchmarks/planet.py")
        atomic_write_bytes(dest / "model.json", (json.dumps(card, indent=2) + "\n").encode())
    env = json.loads((dest / "model.json").read_text())["env"]
    atomic_write_bytes(dest / "__init__.py", (f'"""The shipped default model of {known.dream_id}: PlaNet\'s RSSM of {known.real_id} '
                                              f'({env.get("kwargs")}), trained by the PlaNet loop (data only: model.json + model.safetensors)."""\n').encode())
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    print(f"shipped {a.model} as {dest} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
