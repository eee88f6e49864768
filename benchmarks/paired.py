"""Two agents' real returns on the same seeds, compared episode by episode: the mean difference and its standard error.

Reads the reports ``gym-dream evaluate --report PATH`` writes (PATH.json, whose rows carry ``real_seeds`` and
``real_returns``) and refuses two reports that do not cover the same seeds.

    python benchmarks/paired.py results/range_carracing_cmaes.json results/range_carracing_cmaes_control_tau1.15.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def real_returns(report: str | Path) -> tuple[list[int], np.ndarray]:
    row = json.loads(Path(report).read_text())[0]
    return row["real_seeds"], np.asarray(row["real_returns"], dtype=np.float64)


def paired(a: str | Path, b: str | Path) -> dict:
    """``a`` minus ``b``, episode by episode: mean, standard error (ddof 1) and the episode count."""
    (seeds_a, ra), (seeds_b, rb) = real_returns(a), real_returns(b)
    if seeds_a != seeds_b or len(ra) != len(rb):
        raise SystemExit(f"{a} covers seeds {seeds_a} ({len(ra)} episodes) and {b} seeds {seeds_b} ({len(rb)}): a paired "
                         "comparison needs the same episodes.")
    d = ra - rb
    return {"a": str(a), "b": str(b), "mean_a": round(float(ra.mean()), 1), "mean_b": round(float(rb.mean()), 1),
            "difference": round(float(d.mean()), 1), "standard_error": round(float(d.std(ddof=1) / np.sqrt(len(d))), 1),
            "episodes": len(d), "seeds": seeds_a}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="a report's JSON (gym-dream evaluate --report)")
    p.add_argument("b", help="another, on the same seeds")
    r = paired(*p.parse_args().__dict__.values())
    print(json.dumps(r))
    print(f"{r['a']} - {r['b']}: {r['difference']:+.1f} ± {r['standard_error']:.1f} over {r['episodes']} episodes (seeds {r['seeds'][0]}-{r['seeds'][-1]})")


if __name__ == "__main__":
    main()
