"""A dream as hard as the real game: calibrate the temperature on random play, then train SB3 agents around it.

    python benchmarks/dream_temperature.py --dream-id Dream-DoomTakeCover-v0 --algos ppo dqn a2c \\
        --taus 1.3 1.5 1.7 2.0 --agent-seeds 0 1 --work runs/doom-temperature --out results/doom_temperature

A dream that is kinder than the game (random play survives longer in it) is what a gradient agent exploits. Three
stages, each resumable from ``--work`` (every finished piece is one JSON file there; the tables are rewritten as
rows arrive):

1. **Calibration** (uses no agent; ``trainers/evaluation/calibrate.py``, ``gym-dream calibrate``): a uniform random policy on
   ``--calibration-episodes`` real episodes (seeds from ``--calibration-seed``) and in the dream at every
   ``--calibration-taus``; the calibrated tau is the one whose dream return is closest to the real one. Random play is
   the data's own policy family, so this choice never looks at how any trained agent does in the real env.
2. **Candidates**: each algorithm x training tau x agent seed trains in the dream (``gym-dream train``'s recipe:
   ``--timesteps`` dream steps of ``--num-envs`` dreams, the best of its dream evaluations kept), then is scored in
   the calibrated dream (``--dream-episodes``) and on ``--episodes`` real episodes (seeds from ``--seed``): the real
   score is reported, never used to choose.
3. **Choice**: per algorithm, the candidate with the best return in the calibrated dream, among every candidate
   (``all``) and among those trained at the calibrated tau (``calibrated``: the workflow of a model whose card holds
   the calibrated tau as its default), each scored again on ``--final-episodes`` real episodes from ``--final-seed``
   (the bar rows); and, for comparison and not dream-only, the candidate with the best real validation return
   (``validation``: the ``--episodes`` it was scored on), scored on the same fresh episodes.

4. **Ensembles** (no choice at all): every candidate of a pool (``--ensembles``: ``calibrated``, the candidates
   trained at the calibrated tau; ``all``, every candidate) votes as one agent (``trainers/agents/ensemble.py``:
   the members' action probabilities averaged, or their Box actions), scored like a candidate (calibrated dream,
   the ``--episodes`` validation episodes, for comparison) and on the ``--final-episodes`` fresh ones. Its members are
   only what was trained, so it is dream-only by construction.

Every candidate in ``--work`` is in the tables and the choice, so algorithms can be run with different grids by
invoking the script again on the same folder (``--algos dqn a2c --taus 1.5 1.7``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


import gym_dream
from gym_dream.catalogue import by_dream_id
from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.ensemble import save_ensemble
from trainers.evaluation.evaluate import spearman, stats
from trainers.evaluation.rollout import dream_episode_returns, real_episode_returns
from trainers.agents.stored_agent import load_agent
from trainers.experiment.stages.ship import add_agent
from trainers.agents.sb3 import SB3Config, train_sb3
from trainers.evaluation.calibrate import MATCH_SE, CalibrateConfig, calibrate_tau, calibration_table
from trainers.infra.provenance import provenance


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def calibrate(a, work: Path) -> dict:
    path = work / "calibration.json"
    if not path.is_file():
        cal = calibrate_tau(CalibrateConfig(model=a.model, taus=a.calibration_taus, episodes=a.calibration_episodes,
                                            dream_episodes=a.calibration_dream_episodes, seed=a.calibration_seed, workers=a.workers))
        print(calibration_table(cal), flush=True)
        _write_json(path, cal)
    return json.loads(path.read_text())


def _candidate(job: dict) -> dict:
    """Train one candidate (unless its agent is there) and score it in the calibrated dream and the real env."""
    import torch

    torch.set_num_threads(1)
    a, run, row_path = argparse.Namespace(**job["args"]), Path(job["run"]), Path(job["row"])
    if not (run / "train_seconds.json").is_file():  # written once training finished (train_sb3 resumes a stopped run)
        t0 = time.time()
        train_sb3(SB3Config(algo=job["algo"], env_id=a.dream_id, model=a.model, out=str(run), tau=job["tau"], timesteps=a.timesteps,
                            num_envs=a.num_envs, eval_every=a.eval_every, eval_episodes=a.eval_episodes,
                            hparams={**a.hparams.get("all", {}), **a.hparams.get(job["algo"], {})}, seed=job["seed"],
                            action_hold=getattr(a, "action_hold", 1), action_low=getattr(a, "action_low", None),
                            action_high=getattr(a, "action_high", None)))
        _write_json(run / "train_seconds.json", {"seconds": time.time() - t0})
    agent = load_agent(run / "best")
    t0 = time.time()
    dream = dream_episode_returns(agent, a.dream_id, a.model, job["calibrated_tau"], a.dream_episodes, seed=1_000_000)
    own = dream_episode_returns(agent, a.dream_id, a.model, job["tau"], a.dream_episodes, seed=1_000_000)
    real, _ = real_episode_returns(agent, job["real_id"], a.model, a.episodes, seed=a.seed)
    row = {"algo": job["algo"], "tau": job["tau"], "agent_seed": job["seed"], "run": str(run),
           "recipe": json.loads((run / "best" / "policy.json").read_text()).get("recipe"),
           "calibrated_dream": stats(dream), "own_dream": stats(own), "real": stats(real), "real_seeds": [a.seed, a.seed + a.episodes - 1],
           "train_seconds": json.loads((run / "train_seconds.json").read_text())["seconds"], "score_seconds": time.time() - t0}
    _write_json(row_path, row)
    print(f"{job['algo']} tau {job['tau']} seed {job['seed']}: calibrated dream {dream.mean():.0f}, own dream {own.mean():.0f}, "
          f"real {real.mean():.0f} ± {real.std():.0f}", flush=True)
    return row


#: the two choices: among every candidate (the training tau is chosen too), or among those trained at the calibrated tau
#: (the workflow of a model whose card holds the calibrated tau: train at the default tau, keep the best seed)
#: and, not dream-only, the candidate with the best real return on its validation episodes (CMA-ES's cmaes-selected
#: protocol: it spends those real episodes, and the final scores it on other seeds)
RULES = {"all": "every candidate", "calibrated": "the candidates trained at the calibrated tau",
         "validation": "every candidate, by its real validation episodes (not dream-only)"}


def _score(r: dict, rule: str) -> float:
    return r["real"]["mean"] if rule == "validation" else r["calibrated_dream"]["mean"]


def choose(rows: list[dict], tau: float) -> dict[tuple[str, str], dict]:
    """Per algorithm and rule, the candidate with the best calibrated-dream return (the validation rule: real return)."""
    chosen: dict[tuple[str, str], dict] = {}
    for r in rows:
        for rule in RULES:
            best = chosen.get((r["algo"], rule))
            if (rule != "calibrated" or r["tau"] == tau) and (best is None or _score(r, rule) > _score(best, rule)):
                chosen[(r["algo"], rule)] = r
    return chosen


def candidates_table(rows: list[dict], tau: float) -> str:
    chosen = choose(rows, tau)
    lines = [f"| agent | trained at tau | agent seed | dream return (its tau) | dream return (calibrated tau {tau}) | real return | "
             "real episodes | gap | train + score |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["algo"], r["tau"], r["agent_seed"])):
        rules = [rule for rule in RULES if chosen.get((r["algo"], rule)) is r]
        mark = f" (chosen: {', '.join(rules)})" if rules else ""
        d, own, real = r["calibrated_dream"], r["own_dream"], r["real"]
        lines.append(f"| {r['algo'].upper()}{mark} | {r['tau']} | {r['agent_seed']} | {own['mean']:.0f} ± {own['std']:.0f} | "
                     f"{d['mean']:.0f} ± {d['std']:.0f} | **{real['mean']:.0f} ± {real['std']:.0f}** | {real['episodes']} | "
                     f"{d['mean'] - real['mean']:+.0f} | {r['train_seconds'] / 60:.0f} + {r['score_seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def final_table(finals: list[dict]) -> str:
    lines = ["| agent | chosen (in the calibrated dream unless said) among | trained at tau | agent seed | dream return (calibrated tau) | "
             "real return | real episodes (seeds) |", "|---|---|---|---|---|---|---|"]
    for f in sorted(finals, key=lambda f: (f["algo"], f["rule"])):
        lines.append(f"| {f['algo'].upper()} | {RULES[f['rule']]} | {f['tau']} | {f['agent_seed']} | {f['calibrated_dream']['mean']:.0f} ± "
                     f"{f['calibrated_dream']['std']:.0f} | **{f['real']['mean']:.0f} ± {f['real']['std']:.0f}** | "
                     f"{f['real']['episodes']} ({f['real_seeds'][0]}-{f['real_seeds'][1]}) |")
    return "\n".join(lines) + "\n"


#: the ensembles' pools: every candidate of one of these votes (no choice among them, so no real episode is spent)
POOLS = {"calibrated": "every candidate trained at the calibrated tau", "all": "every candidate"}


def ensembles(a, work: Path, rows: list[dict], tau: float, real_id: str) -> list[dict]:
    """Per algorithm of ``--algos`` and pool of ``--ensembles``, the pool's candidates as one voting agent, scored in the calibrated
    dream, on the validation episodes and on the final ones (each score resumable; redone when the pool changed)."""
    records = [json.loads(path.read_text()) for path in sorted(work.glob("ensemble-*.json"))]  # other invocations' (other algos)
    records = [e for e in records if e["algo"] not in a.algos and "real" in e]
    for algo in a.algos:
        for pool in a.ensembles:
            members = sorted((r for r in rows if r["algo"] == algo and (pool == "all" or r["tau"] == tau)),
                             key=lambda r: (r["tau"], r["agent_seed"]))
            if len(members) < 2:
                continue
            runs = [r["run"] for r in members]
            path, folder = work / f"ensemble-{algo}-{pool}.json", work / f"ensemble-{algo}-{pool}"
            rec = json.loads(path.read_text()) if path.is_file() else {}
            if rec.get("members") != runs or not folder.is_dir():  # new candidates joined the pool: a new ensemble
                save_ensemble([Path(r) / "best" for r in runs], folder, {"model": a.model, "pool": POOLS[pool], "tau": tau}, load_member=load_agent)
                rec = {"algo": algo, "pool": pool, "members": runs, "taus": sorted({r["tau"] for r in members}),
                       "agent_seeds": sorted({r["agent_seed"] for r in members}), "run": str(folder),
                       "recipe": members[0]["recipe"], "member_real_means": [r["real"]["mean"] for r in members]}
                same = next((e for e in records if e["algo"] == algo and e["members"] == runs), None)
                if same is not None:  # both pools hold the same agents: the same seeds give the same scores
                    rec.update({k: same[k] for k in ("calibrated_dream", "validation", "validation_seeds", "real", "real_seeds") if k in same})
            agent = load_agent(folder)
            if "calibrated_dream" not in rec:
                rec["calibrated_dream"] = stats(dream_episode_returns(agent, a.dream_id, a.model, tau, a.dream_episodes, seed=1_000_000))
                _write_json(path, rec)
            if "validation" not in rec:
                real, _ = real_episode_returns(agent, real_id, a.model, a.episodes, seed=a.seed, workers=a.workers)
                rec.update(validation=stats(real), validation_seeds=[a.seed, a.seed + a.episodes - 1])
                _write_json(path, rec)
            if "real" not in rec:
                real, _ = real_episode_returns(agent, real_id, a.model, a.final_episodes, seed=a.final_seed, workers=a.workers)
                rec.update(real=stats(real), real_seeds=[a.final_seed, a.final_seed + a.final_episodes - 1])
                _write_json(path, rec)
                print(f"ensemble {algo} ({pool}, {len(runs)} members): real {real.mean():.0f} ± {real.std():.0f}", flush=True)
            records.append(rec)
    return records


def ensemble_table(records: list[dict]) -> str:
    lines = ["| ensemble | of | members | dream return (calibrated tau) | real return, validation episodes (members' mean) | "
             "real return, fresh episodes (seeds) |", "|---|---|---|---|---|---|"]
    for e in sorted(records, key=lambda e: (e["algo"], e["pool"])):
        d, v, r = e["calibrated_dream"], e["validation"], e["real"]
        lines.append(f"| {e['algo'].upper()} vote | {POOLS[e['pool']]} (taus {', '.join(map(str, e['taus']))}) | {len(e['members'])} | "
                     f"{d['mean']:.0f} ± {d['std']:.0f} | {v['mean']:.0f} ± {v['std']:.0f} "
                     f"({sum(e['member_real_means']) / len(e['member_real_means']):.0f}) | **{r['mean']:.0f} ± {r['std']:.0f}** "
                     f"({r['episodes']}: {e['real_seeds'][0]}-{e['real_seeds'][1]}) |")
    return "Ensembles (every candidate of the pool votes; no choice, so dream-only):\n\n" + "\n".join(lines) + "\n"


def rank_lines(rows: list[dict]) -> str:
    """How well each dream ranks the candidates: Spearman's rank correlation of dream and real returns, per algorithm."""
    lines = []
    for algo in sorted({r["algo"] for r in rows}):
        mine = [r for r in rows if r["algo"] == algo]
        real = [r["real"]["mean"] for r in mine]
        rho = [spearman([r[dream]["mean"] for r in mine], real) for dream in ("calibrated_dream", "own_dream")]
        cal, own = ("n/a" if v is None else f"{v:.2f}" for v in rho)
        lines.append(f"- {algo.upper()}, {len(mine)} candidates: Spearman rank correlation with the real return "
                     f"{cal} (calibrated dream), {own} (each one's own dream)")
    return "How well the dream ranks the candidates:\n\n" + "\n".join(lines) + "\n"


def _match_note(cal: dict) -> str:
    d, r = cal["dream"][str(float(cal["tau"]))], cal["real"]
    gap, se = d["mean"] - r["mean"], (r["std"] ** 2 / r["episodes"] + d["std"] ** 2 / d["episodes"]) ** 0.5
    return (f" (dream {gap:+.0f} ± {se:.0f} from real: " + ("a match" if abs(gap) <= MATCH_SE * se else
            "NO tau matches, the dream differs from the real env in more than its randomness") + ")")


def report(a, cal: dict, rows: list[dict], finals: list[dict], votes: list[dict] | None = None) -> None:
    """Rewrite OUT.md / OUT.json."""
    cal_line = (f"Random play, real: {cal['real']['mean']:.0f} ± {cal['real']['std']:.0f} ({cal['real']['episodes']} episodes, seeds "
                f"{cal['real_seeds'][0]}-{cal['real_seeds'][1]}); in the dream: "
                + ", ".join(f"tau {t} {s['mean']:.0f} ± {s['std']:.0f} ({s['episodes']} ep)" for t, s in cal["dream"].items())
                + f". Calibrated tau: **{cal['tau']}**" + _match_note(cal) + ".")
    md = "\n\n".join([cal_line, candidates_table(rows, cal["tau"]), rank_lines(rows)] + ([final_table(finals)] if finals else [])
                       + ([ensemble_table(votes)] if votes else []))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(f"{out}.md"), md.encode())
    previous = json.loads(Path(f"{out}.json").read_text()) if Path(f"{out}.json").is_file() else {}
    commands = previous.get("commands") or ([previous["command"]] if "command" in previous else [])
    command = " ".join(["python", *sys.argv])
    commands += [] if command in commands else [command]  # every invocation that added to this folder's table
    _write_json(Path(f"{out}.json"), {"commands": commands, "calibration": cal, "candidates": rows, "finals": finals,
                                      "ensembles": votes or [], "provenance": provenance(command)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dream-id", required=True)
    p.add_argument("--model", default=None, help="model directory or name (default: the id's default model)")
    p.add_argument("--algos", nargs="+", default=["ppo"])
    p.add_argument("--taus", nargs="+", default=["1.3", "1.5", "1.7", "2.0"],
                   help="training temperatures of the candidates; 'calibrated' is the calibrated one")
    p.add_argument("--agent-seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--timesteps", type=int, default=200_000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--eval-every", type=int, default=20_000)
    p.add_argument("--eval-episodes", type=int, default=16)
    p.add_argument("--hparams", type=json.loads, default={"ppo": {"n_steps": 256}},
                   help='SB3 hyper-parameters per algorithm (JSON, {"ppo": {...}, "all": {...}}; default PPO n_steps 256)')
    p.add_argument("--action-hold", type=int, default=1, help="steps per decision of every candidate (frame skip; trainers/agents/action_hold.py)")
    p.add_argument("--action-low", type=float, nargs="+", default=None,
                   help="every candidate's action box, lower end per dimension, inside the env's (SB3Config.action_low)")
    p.add_argument("--action-high", type=float, nargs="+", default=None,
                   help="every candidate's action box, upper end per dimension, inside the env's (e.g. 1 1 0.1: CarRacing's brake at most 0.1)")
    p.add_argument("--calibration-taus", type=float, nargs="+", default=[1.0, 1.15, 1.3, 1.5, 1.7, 2.0])
    p.add_argument("--calibration-episodes", type=int, default=100)
    p.add_argument("--calibration-dream-episodes", type=int, default=200)
    p.add_argument("--calibration-seed", type=int, default=500_000)
    p.add_argument("--dream-episodes", type=int, default=100, help="dream episodes per candidate score")
    p.add_argument("--episodes", type=int, default=20, help="real episodes per candidate (reported, not used to choose)")
    p.add_argument("--seed", type=int, default=300_000, help="first real seed of the candidates' scores")
    p.add_argument("--final-episodes", type=int, default=100)
    p.add_argument("--final-seed", type=int, default=0, help="first real seed of the chosen agents' scores")
    p.add_argument("--jobs", type=int, default=2, help="candidates trained and scored at once (one process and torch thread each)")
    p.add_argument("--workers", type=int, default=2, help="processes for the calibration's and the finals' real episodes")
    p.add_argument("--finals", nargs="*", choices=sorted(RULES), default=sorted(RULES),
                   help="the choices whose agent is scored on the --final-episodes (default: all three; a real CarRacing episode costs ~15 s)")
    p.add_argument("--ensembles", nargs="*", default=[], choices=sorted(POOLS),
                   help="also score these pools of candidates as one voting agent each (calibrated, all)")
    p.add_argument("--ship", nargs="*", default=[], metavar="ALGO",
                   help="ship these algorithms' agents chosen at the calibrated tau as <algo>-tau<tau> next to the model in --ship-to")
    p.add_argument("--ship-to", default=None, help="a model package directory (e.g. gym_dream/bundled/doom_takecover)")
    p.add_argument("--ship-rule", default="calibrated", choices=sorted(RULES) + [f"ensemble-{pool}" for pool in sorted(POOLS)],
                   help="which choice --ship ships: calibrated (as <algo>-tau<tau>), validation (as <algo>-selected), "
                        "ensemble-calibrated (as <algo>-vote-tau<tau>) or ensemble-all (as <algo>-vote)")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.model is None:
        known = by_dream_id(a.dream_id)
        if known is None:
            p.error(f"{a.dream_id} has no default model: pass --model")
        a.model = known.model
    model = gym_dream.resolve_model(a.model)
    real_id = model.card["env"]["id"]
    work = Path(a.work)
    cal = calibrate(a, work)
    print(f"calibrated tau {cal['tau']}", flush=True)
    a.taus = sorted({cal["tau"] if t == "calibrated" else float(t) for t in a.taus})
    jobs = [{"args": vars(a), "algo": algo, "tau": tau, "seed": seed, "calibrated_tau": cal["tau"], "real_id": real_id,
             "run": str(work / f"{algo}-tau{tau}-s{seed}"), "row": str(work / f"{algo}-tau{tau}-s{seed}.json")}
            for algo in a.algos for tau in a.taus for seed in a.agent_seeds]
    # every candidate in the work folder counts, also those of earlier invocations with other grids
    rows = [json.loads(path.read_text()) for path in sorted(work.glob("*-tau*-s*.json"))]
    todo = [j for j in jobs if not Path(j["row"]).is_file()]
    with ProcessPoolExecutor(max_workers=a.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in as_completed([pool.submit(_candidate, j) for j in todo]):
            rows.append(done.result())
            report(a, cal, rows, [])
    report(a, cal, rows, [])
    for legacy in work.glob("final-*.json"):  # a final of the first version, which had one rule
        if legacy.stem.count("-") == 1:
            legacy.rename(legacy.with_name(f"{legacy.stem}-all.json"))
    chosen = choose(rows, cal["tau"])
    finals = [{"rule": "all", **json.loads(path.read_text())} for path in sorted(work.glob("final-*-*.json"))
              if path.stem.split("-")[1] not in a.algos]
    for algo in a.algos:
        for rule in RULES:
            c = chosen.get((algo, rule))
            if c is None or rule not in a.finals:
                continue
            path = work / f"final-{algo}-{rule}.json"
            if path.is_file() and json.loads(path.read_text())["run"] != c["run"]:  # new candidates changed the choice
                path.unlink()
            same = [f for f in finals if f["algo"] == algo and f["run"] == c["run"]]
            if not path.is_file() and same:  # both rules chose the same agent: the same seeds give the same scores
                _write_json(path, {**same[0], "rule": rule})
            if not path.is_file():
                agent = load_agent(Path(c["run"]) / "best")
                real, _ = real_episode_returns(agent, real_id, a.model, a.final_episodes, seed=a.final_seed, workers=a.workers)
                _write_json(path, {**c, "rule": rule, "real": stats(real), "real_seeds": [a.final_seed, a.final_seed + a.final_episodes - 1]})
                print(f"final {algo} ({rule}): tau {c['tau']} seed {c['agent_seed']}: real {real.mean():.0f} ± {real.std():.0f}", flush=True)
            final = json.loads(path.read_text())
            final.setdefault("rule", rule)
            finals.append(final)
            report(a, cal, rows, finals)
    votes = ensembles(a, work, rows, cal["tau"], real_id)
    report(a, cal, rows, finals, votes)
    trained = f"python benchmarks/dream_temperature.py (results/{Path(a.out).name}.md)"
    for algo in a.ship:
        if a.ship_to is None:
            p.error("--ship needs --ship-to (a model package directory)")
        if a.ship_rule.startswith("ensemble-"):
            pool = a.ship_rule.removeprefix("ensemble-")
            vote = next((e for e in votes if e["algo"] == algo and e["pool"] == pool), None)
            if vote is None:
                p.error(f"--ship {algo}: no {pool} ensemble of {algo} here (pass --ensembles {pool})")
            name = f"{algo}-vote-tau{cal['tau']}" if pool == "calibrated" else f"{algo}-vote"
            info = {"kind": f"ensemble-sb3-{algo}", "tau": cal["tau"], "dream": {str(cal["tau"]): vote["calibrated_dream"]},
                    "real": vote["real"], "real_seeds": vote["real_seeds"], "members": len(vote["members"]),
                    "chosen": f"no choice: {POOLS[pool]} (taus {vote['taus']}, agent seeds {vote['agent_seeds']}) votes as one agent",
                    "recipe": vote["recipe"], "trained": trained}
            print(f"shipped {add_agent(Path(a.ship_to), name, Path(vote['run']), info)}")
            continue
        final = next((f for f in finals if f["algo"] == algo and f["rule"] == a.ship_rule), None)
        if final is None:
            p.error(f"--ship {algo}: no final of {algo} by the {a.ship_rule} rule here")
        name = f"{algo}-selected" if a.ship_rule == "validation" else f"{algo}-tau{final['tau']}"
        chosen = {"calibrated": "the best of its seeds in the dream at the calibrated tau (random play's)",
                  "all": "the best of every candidate in the dream at the calibrated tau",
                  "validation": f"the best of every candidate on {a.episodes} real validation episodes (seeds {a.seed}-"
                                f"{a.seed + a.episodes - 1}), scored on other seeds"}[a.ship_rule]
        info = {"kind": f"sb3-{algo}", "tau": final["tau"], "dream": {str(final["tau"]): final["calibrated_dream"]}, "real": final["real"],
                "real_seeds": final["real_seeds"], "chosen": chosen, "recipe": final["recipe"], "trained": trained}
        print(f"shipped {add_agent(Path(a.ship_to), name, Path(final['run']) / 'best', info)}")
    print(Path(f"{a.out}.md").read_text())


if __name__ == "__main__":
    main()
