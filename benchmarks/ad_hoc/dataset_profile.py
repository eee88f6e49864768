"""What a collected dataset holds, part by part: episodes, steps per episode and (discrete actions) how often each
action was taken. A collection round appends to its dataset, so ``--parts`` splits it by episode index.

    python benchmarks/ad_hoc/dataset_profile.py data/doomr --parts 0:613 613: --out results/runs/doom-round/doom_round_data.json
"""

import argparse
import json

import numpy as np

from trainers.data.dataset import EpisodeDataset


def profile(ds: EpisodeDataset, start: int, stop: int) -> dict:
    lengths = np.asarray(ds.lengths[start:stop])
    row = {"episodes": [start, start + len(lengths)], "count": len(lengths), "steps": int(lengths.sum()),
           "steps_per_episode": {"mean": float(lengths.mean()), "std": float(lengths.std()), "median": float(np.median(lengths))}}
    actions = np.concatenate([np.asarray(ds.episode(i).actions).reshape(len(ds.episode(i).actions), -1) for i in range(start, start + len(lengths))])
    if actions.shape[1] == 1 and np.all(actions == np.round(actions)):  # discrete
        counts = np.bincount(actions[:, 0].astype(int))
        row["action_shares"] = [float(c) / len(actions) for c in counts]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("--parts", nargs="+", default=[":"], help="episode ranges START:STOP (either end may be left out)")
    p.add_argument("--out", help="also write the rows as JSON here")
    a = p.parse_args()
    ds = EpisodeDataset(a.data)
    rows = []
    for part in a.parts:
        lo, hi = part.split(":")
        rows.append(profile(ds, int(lo or 0), int(hi) if hi else len(ds)))
        print(json.dumps(rows[-1]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"command": "python benchmarks/ad_hoc/dataset_profile.py " + " ".join([a.data, "--parts", *a.parts]), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
