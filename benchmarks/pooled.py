"""One agent's real returns over several reports on different seeds, pooled: the mean and its standard error.

Reads the reports ``gym-dream evaluate --report PATH`` writes (PATH.json) of one agent (its name may differ between
reports: a run folder, then its shipped name) and refuses reports whose seeds overlap (an episode counted twice).

    python benchmarks/pooled.py results/runs/doom-round/doom_round_vote115_7.json results/runs/doom-round/doom_round_vote115_7_on320000.json results/runs/doom-round/doom_round_vote115_7_on330000.json
"""

from __future__ import annotations

import argparse
import json

from trainers.evaluation.pooling import pooled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", help="reports' JSON (gym-dream evaluate --report) of one agent on different seeds")
    try:
        r = pooled(p.parse_args().reports)
    except ValueError as e:
        p.error(str(e))
    print(json.dumps(r))
    print(f"{r['mean']:.1f} ± {r['standard_error']:.1f} (standard error) over {r['episodes']} episodes, seeds {r['seeds']}")


if __name__ == "__main__":
    main()
