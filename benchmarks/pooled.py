"""One agent's real returns over several reports on different seeds, pooled: the mean and its standard error.

Reads the reports ``gym-dream evaluate --report PATH`` writes (PATH.json) of one agent (its name may differ between
reports: a run folder, then its shipped name) and refuses reports whose seeds overlap (an episode counted twice).

    python benchmarks/pooled.py results/doom_round_vote115_7.json results/doom_round_vote115_7_on320000.json results/doom_round_vote115_7_on330000.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import real_returns  # noqa: E402


def pooled(reports: list[str | Path]) -> dict:
    """The returns of every report together: mean, standard error (ddof 1), episodes, and each report's seed range."""
    seeds, returns = zip(*(real_returns(r) for r in reports))
    ranges = sorted((s[0], s[-1]) for s in seeds)
    for (_, high), (low, _) in zip(ranges, ranges[1:]):
        if low <= high:
            raise SystemExit(f"The reports' seeds overlap ({ranges}): each episode may count once.")
    r = np.concatenate(returns)
    return {"reports": [str(p) for p in reports], "mean": round(float(r.mean()), 1),
            "standard_error": round(float(r.std(ddof=1) / np.sqrt(len(r))), 1), "episodes": len(r), "seeds": ranges}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", help="reports' JSON (gym-dream evaluate --report) of one agent on different seeds")
    r = pooled(p.parse_args().reports)
    print(json.dumps(r))
    print(f"{r['mean']:.1f} ± {r['standard_error']:.1f} (standard error) over {r['episodes']} episodes, seeds {r['seeds']}")


if __name__ == "__main__":
    main()
