"""results/README.md, the one results table, generated from the results JSON (as rl-baselines3-zoo's benchmark.md is).

    python benchmarks/results_index.py                  # rewrites results/README.md
    python benchmarks/results_index.py --check          # exits 1 if results/README.md is not what the JSON gives

Every JSON under results/ is read; every evaluation in it is a row: a dict with a ``real`` score
(``{"mean", "std", "episodes"}``), as ``gym-dream evaluate --report`` writes them and as the benchmarks embed them.
Per row: the agent, the real env, the dream score at each temperature, the real score, the intervals, the JSON, the
story page that tells what the row means (a page of results/ that links or names the JSON or its table), and the
command that made it (``"command"`` in the row or in its JSON, or the ``provenance`` block of trainers/infra/provenance.py);
"command not recorded" where the JSON predates that.

The statistics, per column:

* **dream**: mean ± standard deviation of the dream returns at each temperature tau (the episodes in brackets);
* **real**: mean ± standard deviation of the real-env returns, as the JSON records them, and the episode count;
* **mean [95% CI]** and **IQM [95% CI]**: where the JSON holds the per-episode returns, the mean and the interquartile
  mean (the mean of the middle 50 % of episodes, robust to a few crashes or perfect laps) with 95 % percentile
  intervals from rliable's stratified bootstrap (``rliable.library.get_interval_estimates``, episodes as runs of one
  task, 2,000 resamples, a fixed seed, so the table is reproducible); "-" where only the summary was recorded.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
RESAMPLES = 2000
NOT_RECORDED = "command not recorded"


def is_evaluation(d: Any) -> bool:
    """A dict with a real score: ``{"real": {"mean": ..., "episodes": ...}, ...}``."""
    return isinstance(d, dict) and isinstance(d.get("real"), dict) and {"mean", "episodes"} <= set(d["real"])


def evaluations(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """Every evaluation in a JSON document, with the keys that lead to it (an evaluation's own parts are not searched)."""
    if is_evaluation(data):
        return [(path, data)]
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            found += evaluations(v, (*path, str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += evaluations(v, (*path, str(i)))
    return found


def command_of(row: dict, doc: Any) -> str:
    """The command that made a row: its own, its JSON's, or a provenance block's."""
    for where in (row, doc if isinstance(doc, dict) else {}):
        for holder in (where, where.get("provenance") or {}):
            cmd = holder.get("command") if isinstance(holder, dict) else None
            if isinstance(cmd, str) and cmd.strip():
                return cmd.strip()
    return NOT_RECORDED


def commit_of(row: dict, doc: Any) -> str | None:
    for where in (row, doc if isinstance(doc, dict) else {}):
        for holder in (where, where.get("provenance") or {}):
            if isinstance(holder, dict) and isinstance(holder.get("commit"), str):
                return holder["commit"]
    return None


def intervals(returns: np.ndarray, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Mean and IQM of per-episode returns with 95 % stratified-bootstrap intervals (rliable): ``{stat: (point, lo, hi)}``."""
    from rliable import library as rly
    from rliable import metrics

    scores = {"x": np.asarray(returns, dtype=np.float64).reshape(-1, 1)}  # episodes as runs of one task

    def both(s: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)])

    # arch (rliable's bootstrap) no longer honours random_state and draws from numpy's global generator: seed that one
    # for the call, and give it back as it was
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch: random_state is deprecated in favour of generator
            point, ci = rly.get_interval_estimates(scores, both, reps=RESAMPLES)
    finally:
        np.random.set_state(saved)
    (m, iqm), ((m_lo, iqm_lo), (m_hi, iqm_hi)) = point["x"], ci["x"]
    return {"mean": (float(m), float(m_lo), float(m_hi)), "iqm": (float(iqm), float(iqm_lo), float(iqm_hi))}


def story_pages(results: Path) -> dict[str, str]:
    """Each story page's text by its path under results/: the Markdown of results/ except this index and the logs of
    results/runs/ (the per-seed tables), the pages of its other folders (calibration/) last."""
    found = [p for p in results.rglob("*.md") if p.name != "README.md" and "runs" not in p.relative_to(results).parts[:-1]]
    found.sort(key=lambda p: (len(p.relative_to(results).parts), p.name))
    return {p.relative_to(results).as_posix(): p.read_text(encoding="utf-8") for p in found}


def story_of(json_rel: str, pages: dict[str, str]) -> str | None:
    """The story page of a JSON: the page beside it (x.md for x.json), else of the pages that name the JSON or its
    table the one whose name shares the longest start with the JSON's (doom_round_vote115_7.json: doom_round.md), then
    the one that names it most often."""
    twin = json_rel[: -len(".json")] + ".md"
    if twin in pages:
        return twin  # a story page with its data beside it (results/doom_temperature.md and .json)
    stem = json_rel.rsplit("/", 1)[-1][: -len(".json")]
    pat = re.compile(rf"(?<![\w.-]){re.escape(stem)}\.(json|md)\b")

    def shared(page: str) -> int:
        name = page.rsplit("/", 1)[-1][: -len(".md")]
        return next((i for i, (a, b) in enumerate(zip(name, stem)) if a != b), min(len(name), len(stem)))

    naming = [(shared(page), len(pat.findall(text)), page) for page, text in pages.items() if pat.search(text)]
    return max(naming, key=lambda t: (t[0], t[1]))[2] if naming else None


#: the real env of a JSON that names none, from its file name
ENV_BY_NAME = {"carracing": "CarRacing-v3", "doom": "VizdoomTakeCover-v1", "cartpole-swingup": "dm_control/cartpole-swingup-v0",
               "cheetah": "dm_control/cheetah-run-v0", "walker": "dm_control/walker-walk-v0", "cartpole": "CartPole-v1",
               "pendulum": "Pendulum-v1"}
ENV_KEYS = ("real_env_id", "env_id", "real_id")


def env_of(doc: Any, keys: tuple[str, ...], name: str) -> str:
    """The real env of the evaluation at ``keys`` in ``doc``: named by it or by a dict that holds it, else by the file."""
    holders, node = [doc], doc
    for k in keys:
        node = node[int(k)] if isinstance(node, list) else node[k]
        holders.append(node)
    for holder in reversed(holders):
        if isinstance(holder, dict):
            for key in ENV_KEYS:
                if isinstance(holder.get(key), str):
                    return holder[key]
    return next((env for part, env in ENV_BY_NAME.items() if part in name), "?")


def _fmt(x: Any) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else str(x)


def dream_cell(dream: Any) -> str:
    if isinstance(dream, dict) and all(isinstance(v, dict) and "mean" in v for v in dream.values()):
        return "<br>".join(f"τ {tau}: {_fmt(d['mean'])} ± {_fmt(d.get('std', '?'))} ({d.get('episodes', '?')})"
                           for tau, d in dream.items())
    if isinstance(dream, dict) and "mean" in dream:
        return f"{_fmt(dream['mean'])} ± {_fmt(dream.get('std', '?'))} ({dream.get('episodes', '?')})"
    return "-"


def rows_of(path: Path, results: Path, pages: dict[str, str], with_intervals: bool = True) -> list[dict]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    rel = path.relative_to(results).as_posix()
    story = story_of(rel, pages)
    out = []
    for keys, row in evaluations(doc):
        real = row["real"]
        returns = row.get("real_returns", real.get("returns"))
        stats = intervals(np.asarray(returns)) if with_intervals and isinstance(returns, list) and len(returns) >= 2 else None
        agent = row.get("agent") or row.get("name") or "/".join(keys) or path.stem
        out.append({"env": env_of(doc, keys, rel), "agent": str(agent), "dream": dream_cell(row.get("dream")),
                    "real": f"{_fmt(real['mean'])} ± {_fmt(real.get('std', '?'))}", "episodes": real["episodes"],
                    "stats": stats, "json": rel, "story": story, "command": command_of(row, doc), "commit": commit_of(row, doc)})
    return out


def table(rows: list[dict]) -> str:
    head = ["| env | agent | dream return | real return | episodes | mean [95% CI] | IQM [95% CI] | JSON | story | command |",
            "|---|---|---|---|---:|---|---|---|---|---|"]
    lines = []
    for r in rows:
        s = r["stats"]
        ci = {k: f"{v[0]:.1f} [{v[1]:.1f}, {v[2]:.1f}]" for k, v in s.items()} if s else {"mean": "-", "iqm": "-"}
        cmd = NOT_RECORDED if r["command"] == NOT_RECORDED else "`" + r["command"].replace("|", "\\|").replace("`", "'") + "`"
        if r["commit"]:
            cmd += f" @ `{r['commit'][:12]}`"
        story = f"[{r['story']}]({r['story']})" if r["story"] else "-"
        agent = r["agent"].replace("|", "\\|")
        lines.append(f"| {r['env']} | `{agent}` | {r['dream']} | {r['real']} | {r['episodes']} | {ci['mean']} | {ci['iqm']} | "
                     f"[{r['json'].rsplit('/', 1)[-1]}]({r['json']}) | {story} | {cmd} |")
    return "\n".join(head + lines) + "\n"


def render(results: Path = RESULTS, with_intervals: bool = True) -> str:
    pages = story_pages(results)
    rows = [r for p in sorted(results.rglob("*.json")) for r in rows_of(p, results, pages, with_intervals)]
    rows.sort(key=lambda r: (r["env"], r["json"]))
    recorded = sum(r["command"] != NOT_RECORDED for r in rows)
    envs: dict[str, list[dict]] = {}
    for r in rows:
        envs.setdefault(r["env"], []).append(r)
    story_list = "\n".join(f"- [{p}]({p})" for p in pages if "/" not in p)
    doc = [
        "# Results",
        "",
        "<!-- generated by `python benchmarks/results_index.py` from the JSON under results/: do not edit by hand -->",
        "",
        f"Every evaluation recorded under results/: {len(rows)} rows from {len({r['json'] for r in rows})} JSON files, "
        f"{recorded} with the command that made them. Statistics: **dream return** and **real return** are mean ± "
        "standard deviation over the episodes counted beside them, as the JSON records them; **mean [95% CI]** and "
        "**IQM [95% CI]** (interquartile mean) are recomputed from the per-episode returns where the JSON keeps them, with "
        f"95 % percentile intervals from rliable's stratified bootstrap ({RESAMPLES:,} resamples, episodes as runs). "
        "**story** is the page that says what the row means (of the pages of results/ that name the JSON or its table, the "
        "one whose name is closest to the JSON's). Per-seed and per-member logs are in [runs/](runs/); "
        "[runs.md](runs.md) lists the runs behind the shipped agents.",
        "",
        "Story pages:",
        "",
        story_list,
        "",
    ]
    for env, env_rows in envs.items():
        doc += [f"## {env}", "", table(env_rows)]
    return "\n".join(doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=str(RESULTS), help="the results folder (default: the repository's)")
    p.add_argument("--check", action="store_true", help="only compare with the README there; exit 1 if it differs")
    a = p.parse_args(argv)
    results = Path(a.results)
    text = render(results)
    out = results / "README.md"
    if a.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else 'out of date: run python benchmarks/results_index.py'}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
