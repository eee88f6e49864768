"""Real returns of ``gym-dream evaluate --report`` files, pooled: one agent over several seed sets, or two agents on the
same seeds compared episode by episode. Means and standard errors (ddof 1), each episode counted once.

Used by ``benchmarks/pooled.py`` and ``benchmarks/paired.py`` (the commands results/ cites); a report is the JSON
``write_report`` writes, whose first row carries ``real_seeds`` and ``real_returns``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["paired", "pooled", "real_returns"]


def real_returns(report: str | Path) -> tuple[list[int], np.ndarray]:
    """The seed range and the per-episode real returns of a report's first row."""
    row = json.loads(Path(report).read_text())[0]
    return row["real_seeds"], np.asarray(row["real_returns"], dtype=np.float64)


def paired(a: str | Path, b: str | Path, *more: str | Path) -> dict:
    """``a`` minus ``b``, episode by episode: mean, standard error (ddof 1) and the episode count. ``more`` adds pairs
    (a2, b2, a3, b3, ...), each on its own seeds, whose differences pool with the first pair's.

    Raises:
        ValueError: an odd number of reports, a pair on different seeds, or seeds an earlier pair covers.
    """
    reports = [a, b, *more]
    if len(reports) % 2:
        raise ValueError(f"{len(reports)} reports given: a paired comparison takes them in pairs (A1 B1 A2 B2 ...).")
    ra_all, rb_all, seeds = [], [], []
    for x, y in zip(reports[0::2], reports[1::2]):
        (seeds_a, ra), (seeds_b, rb) = real_returns(x), real_returns(y)
        if seeds_a != seeds_b or len(ra) != len(rb):
            raise ValueError(f"{x} covers seeds {seeds_a} ({len(ra)} episodes) and {y} seeds {seeds_b} ({len(rb)}): a paired "
                             "comparison needs the same episodes.")
        if seeds_a in seeds:
            raise ValueError(f"{x} and {y} cover seeds {seeds_a}, which an earlier pair covers too: each episode counts once.")
        ra_all.append(ra)
        rb_all.append(rb)
        seeds.append(seeds_a)
    ra, rb = np.concatenate(ra_all), np.concatenate(rb_all)
    d = ra - rb
    return {"a": str(a), "b": str(b), "pairs": len(seeds), "mean_a": round(float(ra.mean()), 1),
            "mean_b": round(float(rb.mean()), 1), "difference": round(float(d.mean()), 1),
            "standard_error": round(float(d.std(ddof=1) / np.sqrt(len(d))), 1), "episodes": len(d),
            "seeds": seeds[0] if len(seeds) == 1 else seeds}


def pooled(reports: list[str | Path]) -> dict:
    """The returns of every report together: mean, standard error (ddof 1), episodes, and each report's seed range.

    Raises:
        ValueError: reports whose seed ranges overlap (an episode would count twice).
    """
    seeds, returns = zip(*(real_returns(r) for r in reports))
    ranges = sorted((s[0], s[-1]) for s in seeds)
    for (_, high), (low, _) in zip(ranges, ranges[1:]):
        if low <= high:
            raise ValueError(f"The reports' seeds overlap ({ranges}): each episode may count once.")
    r = np.concatenate(returns)
    return {"reports": [str(p) for p in reports], "mean": round(float(r.mean()), 1),
            "standard_error": round(float(r.std(ddof=1) / np.sqrt(len(r))), 1), "episodes": len(r), "seeds": ranges}
