"""Does a world model's disagreement warn of its errors? Measured on held-out real episodes.

    python benchmarks/calibration.py DATA MODEL [MODEL ...] [--names A B ...] [--summary TAG]

DATA is a dataset folder of real episodes the models never trained on (``gym-dream collect``). For
every held-out transition (o_t, a_t, o_{t+1}) each model

* filters the real episode up to o_t (``initial_state(obs=o_0)``, then ``observe``), the way
  ``DreamObservation`` does;
* dreams one step from there with the real action (``imagine`` at tau 0: the most likely next latent
  of member 0, which stands for any one member as ``member="random_per_episode"`` dreams follow one;
  ``--member mean``: the members' average) and reports the members' disagreement d_t;
* dreams 10 steps open-loop from o_t with the real actions a_t..a_{t+9}.

The one-step error is the RMS over latent dims between the dreamed next latent and the real one (the
encoded o_{t+1} for an MDN-RNN, the posterior mean of o_{t+1} for an RSSM); the 10-step error the same
at t+10. Reported: the Spearman rank correlation of d_t with the one-step error, of d_t with the
10-step error, and of the mean disagreement along the 10 dreamed steps with the 10-step error; the
errors per decile of d_t; the share of held-out steps above each of the card's held-out quantiles;
and the held-out NLL (MDN-RNN: per member, and of the members' mixture). Writes
results/calibration/calibration_<name>.{json,png} per model, and with --summary TAG a table of all of them in
results/calibration/calibration_<TAG>.md. About 10 s per CartPole model on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch


from gym_dream.models.base import State
from gym_dream.store import resolve_model
from trainers.data.dataset import EpisodeDataset
from trainers.evaluation.evaluate import spearman
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "results" / "calibration"


def _stack(states: list[State]) -> State:
    return {k: torch.cat([s[k] for s in states]) for k in states[0]}


def _split(state: State, n: int) -> list[State]:
    parts = {k: v.split(n) for k, v in state.items()}
    return [{k: parts[k][i] for k in state} for i in range(len(next(iter(parts.values()))))]


@torch.no_grad()
def measure(model, ds: EpisodeDataset, horizon: int = 10, member: str = "0") -> dict[str, np.ndarray]:
    """Per held-out transition: disagreement, one-step and ``horizon``-step errors (NaN where the episode is too short)."""
    model.eval()
    key = "z" if "z" in model.initial_state(1) else "s"
    member = "mean" if (model.members > 1 and member == "mean") else None  # None: member 0
    eps = np.arange(len(ds))
    lengths = ds.lengths[eps]
    b, lmax = len(eps), int(lengths.max())
    t_idx = np.arange(lmax + 1)
    obs_idx = ds.obs_start[eps][:, None] + np.minimum(t_idx[None], lengths[:, None])  # padded with the last frame
    act_idx = ds.act_start[eps][:, None] + np.minimum(t_idx[None, :-1], lengths[:, None] - 1)
    obs = torch.as_tensor(ds.obs[obs_idx], device=model.device)
    actions = torch.as_tensor(ds.actions[act_idx], device=model.device)
    d1 = np.full((b, lmax), np.nan)
    e1 = np.full((b, lmax), np.nan)
    e_h = np.full((b, lmax), np.nan)
    d_h = np.full((b, lmax), np.nan)
    state = model.initial_state(0, obs=obs[:, 0])
    flight: list[tuple[int, State, torch.Tensor]] = []  # open-loop rollouts in progress: (start t, state, summed disagreement)
    rms = lambda a, c: (a - c).pow(2).mean(-1).sqrt().cpu().numpy()
    for t in range(lmax):
        a = actions[:, t]
        nxt = model.observe(state, a, obs[:, t + 1])  # the real next state, filtered
        # every rollout in flight (and a new one from the filtered state at t) steps with a_t, as one batch
        starts = [s for s, _, _ in flight] + [t]
        batch = _stack([st for _, st, _ in flight] + [state])
        tr = model.imagine(batch, a.repeat(len(starts), *([1] * (a.dim() - 1))), 0.0, None, member=member) if member else \
            model.imagine(batch, a.repeat(len(starts), *([1] * (a.dim() - 1))), 0.0, None)
        dis = tr.disagreement if tr.disagreement is not None else torch.zeros_like(tr.reward)
        moved = _split(tr.state, b)
        dis_parts = dis.split(b)
        new_flight = []
        for i, s0 in enumerate(starts):
            summed = dis_parts[i] if s0 == t else flight[i][2] + dis_parts[i]
            if s0 == t:
                d1[:, t] = dis_parts[i].cpu().numpy()
                e1[:, t] = rms(moved[i][key], nxt[key])
            if t + 1 - s0 == horizon:
                e_h[:, s0] = rms(moved[i][key], nxt[key])
                d_h[:, s0] = (summed / horizon).cpu().numpy()
            else:
                new_flight.append((s0, moved[i], summed))
        flight = new_flight
        state = nxt
    valid1 = t_idx[None, :-1] < lengths[:, None]
    valid_h = t_idx[None, :-1] + horizon <= lengths[:, None]
    return {"d1": d1[valid1], "e1": e1[valid1], "d1_h": d1[valid_h], "e_h": e_h[valid_h], "d_h": d_h[valid_h]}


@torch.no_grad()
def heldout_nll(model, ds: EpisodeDataset) -> dict[str, float] | None:
    """Teacher-forced held-out NLL per latent dim (MDN-RNN only): members' mean, and of their mixture."""
    if model.family != "mdnrnn":
        return None
    eps = np.arange(len(ds))
    lengths = ds.lengths[eps]
    lmax = int(lengths.max())
    t_idx = np.arange(lmax + 1)
    obs_idx = ds.obs_start[eps][:, None] + np.minimum(t_idx[None], lengths[:, None])
    act_idx = ds.act_start[eps][:, None] + np.minimum(t_idx[None, :-1], lengths[:, None] - 1)
    mask = torch.as_tensor(t_idx[None, :-1] < lengths[:, None], dtype=torch.float32)
    z = model.encode(torch.as_tensor(ds.obs[obs_idx.reshape(-1)])).reshape(len(eps), lmax + 1, -1)
    out = model.sequence_loss(z, torch.as_tensor(ds.actions[act_idx]), torch.as_tensor(ds.rewards[act_idx]),
                              torch.as_tensor(ds.terminated[act_idx]), mask)
    res = {"nll": float(out["nll"]), "reward_mse": float(out["reward_mse"]), "termination_bce": float(out["termination_bce"])}
    res["ensemble_nll"] = float(out.get("ensemble_nll", out["nll"]))
    return res


def deciles(d: np.ndarray, *errors: np.ndarray) -> list[dict[str, float]]:
    if np.ptp(d) == 0:
        return []
    edges = np.quantile(d, np.linspace(0, 1, 11))
    rows = []
    for i in range(10):
        sel = (d >= edges[i]) & ((d <= edges[i + 1]) if i == 9 else (d < edges[i + 1]))
        rows.append({"decile": i + 1, "n": int(sel.sum()), "disagreement": float(d[sel].mean()),
                     **{f"error_{j}": float(e[sel].mean()) for j, e in enumerate(errors)}})
    return rows


def plot(name: str, r: dict[str, np.ndarray], stats: dict, path: Path, horizon: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("d1", "e1", "disagreement at t", "one-step error", stats["spearman_one_step"]),
              ("d1_h", "e_h", "disagreement at t", f"{horizon}-step open-loop error", stats["spearman_horizon"]),
              ("d_h", "e_h", f"mean disagreement over the {horizon} dreamed steps", f"{horizon}-step open-loop error", stats["spearman_horizon_mean"])]
    rng = np.random.default_rng(0)
    for ax, (dx, ey, xl, yl, rho) in zip(axes, panels):
        x, y = r[dx], r[ey]
        pick = rng.permutation(len(x))[:4000]
        ax.scatter(x[pick], y[pick], s=3, alpha=0.3)
        for row in deciles(x, y):
            ax.plot(row["disagreement"], row["error_0"], "o", color="C3")
        if np.ptp(x) > 0 and x.min() > 0:
            ax.set_xscale("log")
        if y.min() > 0:
            ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(f"Spearman {rho:.2f}" if rho is not None else "disagreement constant (one member)")
    fig.suptitle(f"{name}: disagreement vs actual error on {stats['transitions']} held-out real transitions (red: decile means)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(model_dir: str, name: str, data: str, horizon: int, member: str = "0") -> dict:
    model = resolve_model(model_dir)
    ds = EpisodeDataset(data)
    start = time.perf_counter()
    r = measure(model, ds, horizon, member)
    seconds = time.perf_counter() - start
    card_q = ((model.card.get("uncertainty") or {}).get("heldout_disagreement") or {}).get("quantiles") or {}
    training = model.card.get("training") or {}
    stats = {
        "model": model_dir, "name": name, "family": model.family, "members": model.members,
        "dropout": getattr(model, "dropout", 0.0), "data": data, "episodes": int(len(ds)), "transitions": int(len(r["d1"])),
        "horizon": horizon, "horizon_transitions": int(len(r["e_h"])), "dreaming_member": member,
        "spearman_one_step": spearman(r["d1"], r["e1"]),
        "spearman_horizon": spearman(r["d1_h"], r["e_h"]),
        "spearman_horizon_mean": spearman(r["d_h"], r["e_h"]),
        "one_step_error": {"mean": float(r["e1"].mean()), "median": float(np.median(r["e1"]))},
        "horizon_error": {"mean": float(r["e_h"].mean()), "median": float(np.median(r["e_h"]))},
        "disagreement": {"mean": float(r["d1"].mean()), **{q: float(np.quantile(r["d1"], float(q) / 100)) for q in ("50", "90", "99")}},
        "share_above_card_quantile": {q: float((r["d1"] > v).mean()) for q, v in card_q.items()},
        "deciles_one_step": deciles(r["d1"], r["e1"]),
        "deciles_horizon": deciles(r["d1_h"], r["e_h"]),
        "heldout_nll": heldout_nll(model, ds),
        "fit": {"mdnrnn_seconds": (training.get("epoch_seconds") or {}).get("mdnrnn"), "best_epoch": training.get("best_epoch"),
                "epochs": (training.get("hyperparameters") or {}).get("rnn_epochs"), "cpu_threads": training.get("cpu_threads")},
        "measure_seconds": round(seconds, 2),
        "command": "python " + " ".join(sys.argv),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"calibration_{name}.json").write_text(json.dumps({**stats, "provenance": provenance()}, indent=2) + "\n")
    plot(name, r, stats, RESULTS / f"calibration_{name}.png", horizon)
    return stats


def _fmt(x, digits=3):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary(tag: str, rows: list[dict]) -> None:
    who = "member 0" if rows[0]["dreaming_member"] == "0" else "the members' mean"
    lines = [f"# Calibration of member disagreement: {tag}", "",
             f"Held-out real data: `{rows[0]['data']}` ({rows[0]['episodes']} episodes, {rows[0]['transitions']} transitions), "
             f"`{rows[0]['command']}`.", "",
             f"Errors are those of {who}'s dream (tau 0).", "",
             f"| model | members | held-out NLL (members' mean) | NLL of the members' mixture | one-step error | {rows[0]['horizon']}-step error | "
             f"Spearman d vs one-step error | d vs {rows[0]['horizon']}-step | mean d along the rollout vs {rows[0]['horizon']}-step | "
             f"one-step error, top / bottom decile of d | share of steps above the card's q99 | fit seconds (MDN-RNN) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nll = r["heldout_nll"] or {}
        form = f"{r['members']}" + (f" (dropout {r['dropout']})" if r.get("dropout") else "")
        dec = r["deciles_one_step"]
        ratio = dec[-1]["error_0"] / dec[0]["error_0"] if dec else None
        above = r["share_above_card_quantile"].get("99")
        lines.append(f"| {r['name']} | {form} | {_fmt(nll.get('nll'))} | {_fmt(nll.get('ensemble_nll'))} | {_fmt(r['one_step_error']['mean'], 4)} | "
                     f"{_fmt(r['horizon_error']['mean'], 4)} | {_fmt(r['spearman_one_step'], 2)} | {_fmt(r['spearman_horizon'], 2)} | "
                     f"{_fmt(r['spearman_horizon_mean'], 2)} | {_fmt(ratio, 1)} | {_fmt(above, 3)} | {_fmt(r['fit']['mdnrnn_seconds'], 0)} |")
    lines += ["", "fit seconds: the MDN-RNN stage's wall time summed over resumed runs, on a shared 2-core CPU under varying load "
              "(benchmarks/throughput.py times one training batch of each form in one run). Errors are RMS over latent dims "
              "(standardised observation units for CartPole; the RSSM's stochastic state); NLL per latent dim, lower is better. "
              "The plots are `results/calibration/calibration_<model>.png`, the numbers `results/calibration/calibration_<model>.json`."]
    (RESULTS / f"calibration_{tag}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="held-out real episodes (a `gym-dream collect` folder)")
    p.add_argument("models", nargs="+", help="model directories or names")
    p.add_argument("--names", nargs="+", help="names in the results files (default: the directory names)")
    p.add_argument("--horizon", type=int, default=10, help="open-loop steps of the long error")
    p.add_argument("--summary", help="write results/calibration/calibration_<SUMMARY>.md comparing the models")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--member", choices=("0", "mean"), default="0", help="whose prediction the errors are of: member 0 (one member, as a dream follows) or the members' mean")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = a.names or [Path(m).name for m in a.models]
    if len(names) != len(a.models):
        p.error("--names needs one name per model")
    rows = []
    for m, n in zip(a.models, names):
        s = run(m, n, a.data, a.horizon, a.member)
        rows.append(s)
        print(f"{n}: members {s['members']}, Spearman one-step {_fmt(s['spearman_one_step'], 2)}, {a.horizon}-step {_fmt(s['spearman_horizon'], 2)} "
              f"(rollout mean {_fmt(s['spearman_horizon_mean'], 2)}), NLL {s['heldout_nll']}, {s['measure_seconds']} s", flush=True)
    if a.summary:
        summary(a.summary, rows)


if __name__ == "__main__":
    main()
