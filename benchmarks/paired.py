"""Two agents' real returns on the same seeds, compared episode by episode: the mean difference and its standard error.

Reads the reports ``gym-dream evaluate --report PATH`` writes (PATH.json, whose rows carry ``real_seeds`` and
``real_returns``) and refuses two reports that do not cover the same seeds.

    python benchmarks/paired.py results/range_carracing_cmaes.json results/range_carracing_cmaes_control_tau1.15.json

Several pairs (A1 B1 A2 B2 ...: each A against the B after it, on that pair's seeds) pool their episodes' differences
into one mean and standard error, as ``pooled.py`` pools one agent's sets; a seed in two pairs is refused (an episode
counted twice):

    python benchmarks/paired.py results/doom_vote115_top7.json results/doom_round_vote115_7_on390000.json \
        results/doom_vote115_top7_on410000.json results/doom_round_vote115_7_on410000.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def real_returns(report: str | Path) -> tuple[list[int], np.ndarray]:
    row = json.loads(Path(report).read_text())[0]
    return row["real_seeds"], np.asarray(row["real_returns"], dtype=np.float64)


def paired(a: str | Path, b: str | Path, *more: str | Path) -> dict:
    """``a`` minus ``b``, episode by episode: mean, standard error (ddof 1) and the episode count. ``more`` adds pairs
    (a2, b2, a3, b3, ...), each on its own seeds, whose differences pool with the first pair's."""
    reports = [a, b, *more]
    if len(reports) % 2:
        raise SystemExit(f"{len(reports)} reports given: a paired comparison takes them in pairs (A1 B1 A2 B2 ...).")
    ra_all, rb_all, seeds = [], [], []
    for x, y in zip(reports[0::2], reports[1::2]):
        (seeds_a, ra), (seeds_b, rb) = real_returns(x), real_returns(y)
        if seeds_a != seeds_b or len(ra) != len(rb):
            raise SystemExit(f"{x} covers seeds {seeds_a} ({len(ra)} episodes) and {y} seeds {seeds_b} ({len(rb)}): a paired "
                             "comparison needs the same episodes.")
        if seeds_a in seeds:
            raise SystemExit(f"{x} and {y} cover seeds {seeds_a}, which an earlier pair covers too: each episode counts once.")
        ra_all.append(ra), rb_all.append(rb), seeds.append(seeds_a)
    ra, rb = np.concatenate(ra_all), np.concatenate(rb_all)
    d = ra - rb
    return {"a": str(a), "b": str(b), "pairs": len(seeds), "mean_a": round(float(ra.mean()), 1), "mean_b": round(float(rb.mean()), 1),
            "difference": round(float(d.mean()), 1), "standard_error": round(float(d.std(ddof=1) / np.sqrt(len(d))), 1),
            "episodes": len(d), "seeds": seeds[0] if len(seeds) == 1 else seeds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="a report's JSON (gym-dream evaluate --report)")
    p.add_argument("b", help="another, on the same seeds")
    p.add_argument("more", nargs="*", help="more pairs (A2 B2 ...), each on its own seeds, pooled with the first")
    a = p.parse_args()
    r = paired(a.a, a.b, *a.more)
    print(json.dumps(r))
    where = f"seeds {r['seeds'][0]}-{r['seeds'][-1]}" if r["pairs"] == 1 else f"{r['pairs']} pairs of reports"
    print(f"{r['a']} - {r['b']}: {r['difference']:+.1f} ± {r['standard_error']:.1f} over {r['episodes']} episodes ({where})")


if __name__ == "__main__":
    main()
