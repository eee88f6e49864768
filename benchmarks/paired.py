"""Two agents' real returns on the same seeds, compared episode by episode: the mean difference and its standard error.

Reads the reports ``gym-dream evaluate --report PATH`` writes (PATH.json, whose rows carry ``real_seeds`` and
``real_returns``) and refuses two reports that do not cover the same seeds.

    python benchmarks/paired.py results/runs/carracing-cmaes/range_carracing_cmaes.json results/runs/carracing-cmaes/range_carracing_cmaes_control_tau1.15.json

Several pairs (A1 B1 A2 B2 ...: each A against the B after it, on that pair's seeds) pool their episodes' differences
into one mean and standard error, as ``pooled.py`` pools one agent's sets; a seed in two pairs is refused (an episode
counted twice):

    python benchmarks/paired.py results/runs/doom-round/doom_vote115_top7.json results/runs/doom-round/doom_round_vote115_7_on390000.json \
        results/runs/doom-round/doom_vote115_top7_on410000.json results/runs/doom-round/doom_round_vote115_7_on410000.json
"""

from __future__ import annotations

import argparse
import json

from trainers.evaluation.pooling import paired


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="a report's JSON (gym-dream evaluate --report)")
    p.add_argument("b", help="another, on the same seeds")
    p.add_argument("more", nargs="*", help="more pairs (A2 B2 ...), each on its own seeds, pooled with the first")
    a = p.parse_args()
    try:
        r = paired(a.a, a.b, *a.more)
    except ValueError as e:
        p.error(str(e))
    print(json.dumps(r))
    where = f"seeds {r['seeds'][0]}-{r['seeds'][-1]}" if r["pairs"] == 1 else f"{r['pairs']} pairs of reports"
    print(f"{r['a']} - {r['b']}: {r['difference']:+.1f} ± {r['standard_error']:.1f} over {r['episodes']} episodes ({where})")


if __name__ == "__main__":
    main()
