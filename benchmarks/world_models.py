"""The World Models experiments on pixels, trained only in the dream and scored on the real game.

    python benchmarks/world_models.py doom all          # VizDoom take-cover: the paper's temperature table
    python benchmarks/world_models.py carracing all     # CarRacing-v3

Stages (each resumable; ``all`` runs them in order): ``collect`` (real data) -> ``fit`` (VAE + MDN-RNN)
-> ``train`` (CMA-ES linear controller in the dream at every tau of the sweep) -> ``evaluate`` (dream and
real returns, random baseline) -> ``report`` (results/<env>.md/.json, learning curves, a real-vs-dream GIF)
-> ``ship`` (the model becomes the shipped default of its Dream-* id, fp16, with its scores in the card).
Work files go to runs/<env>/ (``--work``). ``--quick`` shrinks every budget for a smoke run.
Collection rounds: ``iterate`` hands the data collection to the latest controller (World Models' iterative
procedure); on a machine without the earlier rounds' work folder, ``adopt`` starts the next round from the
shipped model and the controller kept in results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import gym_dream  # noqa: E402
from gym_dream.checkpoint import atomic_write_bytes, read_card  # noqa: E402
from trainers.cmaes import CMAESConfig, train_cmaes  # noqa: E402
from trainers.collect import CollectConfig, collect  # noqa: E402
from trainers.controller import LinearController  # noqa: E402
from trainers.evaluate import RandomAgent, evaluate, exploits_dream, _stats, real_episode_returns  # noqa: E402
from trainers.export import record_scores, stage_model_dir  # noqa: E402
from trainers.fit import FitConfig, fit  # noqa: E402

RESULTS = ROOT / "results"


@dataclass
class Experiment:
    name: str
    real_id: str
    dream_id: str
    model_name: str
    collect: dict[str, Any]
    fit: dict[str, Any]
    taus: tuple[float, ...]
    main_tau: float
    cmaes: dict[str, Any]
    real_baseline: bool = False  # also train the controller on the REAL env with the same real-step budget
    episodes: int = 100  # real episodes for the main agent and the random baseline
    sweep_episodes: int = 100  # real episodes for the other taus of the sweep and for the SB3 rows
    random_episodes: int = 100  # real episodes of the random-policy row
    paper: list[str] = field(default_factory=list)
    note: str = ""
    reproduce: list[str] = field(default_factory=list)  # the commands of the reported run, if not just `all` on a CPU
    sb3: dict[str, Any] = field(default_factory=dict)  # stable-baselines3 agents trained in the dream at main_tau: algo -> SB3Config fields
    # further collection rounds driven by the main-tau controller (World Models' iterative procedure):
    # {"rounds": R, "steps": real steps per round, and ControllerPolicy settings (sigma, theta, random)}
    iterate: dict[str, Any] = field(default_factory=dict)
    # also score the main-tau controller WITH the collection rounds' OU noise ({"sigma", "theta"}): the stochastic
    # policy that drove the rounds, trained in the dream like the rest (the noise is the rounds' setting, not tuned)
    noise_row: dict[str, Any] = field(default_factory=dict)
    # CMA-ES runs per tau, one per seed (seed 0 in cmaes-tau<tau>/, seed k in cmaes-tau<tau>-seed<k>/); each tau's
    # row scores the run and CMA-ES output ('best' or 'mean') that does best over fresh dream episodes
    cmaes_seeds: tuple[int, ...] = (0,)
    # also choose ONE agent on real validation tracks ({"episodes": N, "seed": first seed}, seeds disjoint from the
    # test seeds 0..episodes-1): every run's dream pick, with and without the noise row's noise, N real episodes each;
    # the winner is then scored on the test seeds. Real steps spent choosing are counted in its row.
    select: dict[str, Any] = field(default_factory=dict)


EXPERIMENTS = {
    "doom": Experiment(
        name="doom", real_id="VizdoomTakeCover-v1", dream_id="Dream-DoomTakeCover-v0", model_name="doom-takecover",
        # random actions held 1-25 steps (the recipe's "sticky" policy); 613 episodes: where the GPU machine's
        # collection (16 workers) was stopped for time
        collect=dict(episodes=613, steps=None, workers=2, seed=11),
        # the paper's Doom sizes (z 64, LSTM 512) and its x10 weight on the death loss (its restart_factor)
        fit=dict(z_dim=64, hidden=512, vae_channels=(32, 64, 128, 256), vae_epochs=10, vae_frames=150_000, rnn_epochs=100,
                 seq_len=128, termination_weight=10.0, half=True),
        taus=(0.1, 0.5, 1.0, 1.15, 1.3), main_tau=1.3,
        # 26 generations: where the 2.2-minute budget per tau stopped on the GPU (taus 0.1 and 0.5: 23 and 22 in 1.9 min)
        cmaes=dict(generations=26, popsize=64, rollouts=8),
        sb3={"ppo": dict(timesteps=200_000, num_envs=16, eval_every=20_000, eval_episodes=16, hparams={"n_steps": 256})},
        paper=[
            "World Models (Ha & Schmidhuber 2018), Table 2, 100 real episodes: tau 0.10 dream 2086 ± 140 / real 193 ± 58; "
            "tau 0.50: 2060 ± 277 / 196 ± 50; tau 1.00: 1145 ± 690 / 868 ± 511; tau 1.15: 918 ± 546 / 1092 ± 556; "
            "tau 1.30: 732 ± 269 / 753 ± 139; random policy 210 ± 108; 'solved' is 750. Their data: 10,000 random episodes.",
        ],
        reproduce=[
            "python benchmarks/world_models.py doom collect --collect-workers 16   # 613 episodes in 150 s on 16 cores",
            "python benchmarks/world_models.py doom fit --device cuda              # 91 s on an H100",
            "python benchmarks/world_models.py doom train --device cuda --jobs 5 --train-minutes 2.2",
            "python benchmarks/world_models.py doom evaluate --workers 16",
            "python benchmarks/world_models.py doom sb3 --workers 2                 # PPO, on the 2-core CPU (6 min)",
            "python benchmarks/world_models.py doom report && python benchmarks/world_models.py doom ship",
        ],
        note=("**Where this stands (2026-11-22): the bar is met. The controller trained only in the dream at tau 1.3 survives "
              "817 ± 475 steps in the real game over 100 episodes** (the paper at tau 1.3: 753 ± 139; 'solved' is 750; the "
              "aim, the paper's 1092 at tau 1.15, is not reached). The low temperatures reproduce the paper's lesson: at tau 0.1 "
              "and 0.5 the dream is easy (about 2100 and 1800 steps) and the controllers do no better than random in the "
              "real game. Unlike the paper, tau 1.0 and 1.15 did not transfer here: those controllers hold one direction 86-90% "
              "of the time and get pinned against a wall (real 3-episode check: tau 1.15 moves right 90% of steps; tau 1.3 "
              "moves left 50% / right 48% and dodges), so the dream still overrates holding one direction at those "
              "temperatures. One CMA-ES seed per tau and 26 generations, so the ordering of 1.0 / 1.15 / 1.3 is not "
              "robust evidence about temperature. What made the difference from the first attempt (tau 1.15: real 172 ± 44, "
              "every controller held 'right' forever): (1) data whose random actions are held 1-25 steps, so players get pinned "
              "against walls and die there (with 1-10 step holds the dream believed wall-pinning safe); (2) the paper's Doom "
              "sizes, z 64 and LSTM 512, and its x10 weight on the death loss; (3) a GPU: 100 MDN-RNN epochs and CMA-ES with "
              "64 candidates x 8 dream rollouts. The random policy survives 216 ± 88 in the real game and 433 / 387 / 339 "
              "in the dream at tau 1.0 / 1.15 / 1.3 ([doom_dream_check.json](doom_dream_check.json), from `python benchmarks/dream_check.py runs/doom/model --taus 1.0 1.15 1.3 --workers 16 --device cuda --out results/doom_dream_check.json`), so the dream is "
              "still too kind to random play. PPO trained in the same dream at tau 1.3 (200k dream steps, `python "
              "benchmarks/world_models.py doom sb3`, on the 2-core CPU) exploits it: 1733 in the dream, 155 ± 45 in the real "
              "game, below random (3-episode check: it moves left 72% of steps, so it too gets pinned). The linear controller's "
              "few parameters, searched by CMA-ES over whole episodes, exploit less. Data: 613 episodes, 6% of the paper's "
              "10,000. Not done: a DQN row; several seeds per tau."),
    ),
    "carracing": Experiment(
        name="carracing", real_id="CarRacing-v3", dream_id="Dream-CarRacing-v0", model_name="carracing",
        collect=dict(steps=200_000, workers=2, seed=5),
        # sized for the 2-core CPU: a small VAE, and the MDN-RNN stopped by --rnn-minutes (the run's budget is in reproduce)
        # the -100 exits from the playfield (1 in ~5000 steps; the playfield's edge is not drawn) are never predicted
        # (held-out recall 0). Tried and dropped after round 6: end_weight=20 (refit from round 6's model on the same data,
        # runs/carracing/refit7-end-weight20/) raised recall to 0.75 but ended 0.9% of other held-out steps, and in the dream
        # it ended 19-27% of the careful tau 0.5 driver's episodes mid-track, more than the fast driver's that really exits
        # (results/carracing_dream_ends.json)
        fit=dict(vae_channels=(16, 32, 64, 128), vae_epochs=8, vae_frames=50_000, rnn_epochs=60, half=True, threads=2),
        taus=(0.5, 1.0, 1.15, 1.3), main_tau=1.15,
        # the paper's population (64; it used 16 rollouts each); a dream step of 256 envs costs ~6 ms on one core,
        # so the run's budget is wall time (--train-minutes), and the generations reached are in the report
        cmaes=dict(generations=400, popsize=64, rollouts=4),
        episodes=100, sweep_episodes=20, random_episodes=30, real_baseline=True,
        # the first model's controllers drove at full throttle (the data drove slowly) and scored -26 on the real
        # track: rounds of data driven by the latest controller show the model what its driving really does;
        # each round refits from the last round's model, in fewer epochs
        iterate=dict(rounds=2, steps=100_000, sigma=0.1, theta=0.15, check_episodes=10, refit=dict(vae_epochs=3, rnn_epochs=30)),
        # the main tau run with the rounds' noise (rounds 4-6; dropped in round 7, after it fell below the
        # deterministic controller in round 6: 411 vs 439 over the same 100 tracks)
        noise_row={},
        # one CMA-ES run per tau could not tell temperature from seed (round 4: real 561 at tau 1.0, 343 at 1.15)
        cmaes_seeds=(0, 1),
        # the protocol fixed after round 6, before round 7 ran: the headline agent is the tau whose row (its dream pick)
        # scores highest on the sweep's 20 real tracks (seeds 0-19), then scored on 100 fresh tracks (seeds 500100-500199).
        # Rounds 5-6 chose among 16 run picks (with and without the noise) on 10 tracks from seed 100000.
        select=dict(episodes=20, seed=0, test_seed=500_100, candidates="taus"),
        sb3={"ppo": dict(timesteps=300_000, num_envs=16, eval_every=50_000, eval_episodes=16, hparams={"n_steps": 256})},
        reproduce=[
            "# rounds 1-2 (commit 742937f; shipped as gym_dream/bundled/carracing with results/carracing_cmaes_tau1.15):",
            "python benchmarks/world_models.py carracing collect        # 200k steps of the recipe's road_noise policy: 19 min",
            "python benchmarks/world_models.py carracing fit            # 12.5 min",
            "python benchmarks/world_models.py carracing train --taus 1.15 --train-minutes 5   # round 1's controller",
            "python benchmarks/world_models.py carracing iterate        # 10 real episodes of it, then 100k steps it drives: 14 min",
            "python benchmarks/world_models.py carracing fit            # from round 1's model: 7 min",
            "python benchmarks/world_models.py carracing train --taus 1.15 --train-minutes 5",
            "python benchmarks/world_models.py carracing iterate        # round 2",
            "python benchmarks/world_models.py carracing fit",
            "OMP_NUM_THREADS=1 python benchmarks/world_models.py carracing train --jobs 2 --train-minutes 6   # the tau sweep",
            "python benchmarks/world_models.py carracing evaluate && python benchmarks/world_models.py carracing sb3",
            "python benchmarks/world_models.py carracing report && python benchmarks/world_models.py carracing ship",
            "# rounds 3-4 (a fresh machine without runs/ of rounds 1-2), from what round 2 shipped, at commit 7ab9737:",
            "python benchmarks/world_models.py carracing adopt          # the shipped model + controller become runs/carracing/round-3/",
            "python benchmarks/world_models.py carracing iterate        # 10 real episodes of it, then 100k steps it drives (fresh dataset): 17 min",
            "python benchmarks/world_models.py carracing fit            # from the adopted model: 7 min",
            "python benchmarks/world_models.py carracing train --taus 1.15 --train-minutes 5",
            "python benchmarks/world_models.py carracing iterate        # round 4: 100k more steps, 18 min",
            "python benchmarks/world_models.py carracing fit            # on the 200k steps of rounds 3-4, from round 4's model",
            "OMP_NUM_THREADS=1 python benchmarks/world_models.py carracing train --jobs 2 --train-minutes 6   # the tau sweep (one seed then)",
            "python benchmarks/world_models.py carracing evaluate       # every tau, the tau 1.15 controller with the rounds' noise, random",
            "python benchmarks/world_models.py carracing report && python benchmarks/world_models.py carracing ship   # commit bd1cf3f",
            "# round 5, continuing the same runs/carracing at commit 8f7375e:",
            "python benchmarks/world_models.py carracing iterate        # 10 real episodes of the shipped controller, then 100k steps it drives: 21 min",
            "python benchmarks/world_models.py carracing fit            # on the 300k steps of rounds 3-5, from round 5's model",
            "OMP_NUM_THREADS=1 python benchmarks/world_models.py carracing train --jobs 2 --train-minutes 6   # 4 taus x 2 seeds: 24 min",
            "python benchmarks/world_models.py carracing evaluate       # each tau's dream pick of its 2 seeds, the noise row, random",
            "python benchmarks/world_models.py carracing select         # 16 candidates x 10 validation tracks, then the winner on the test tracks",
            "python benchmarks/world_models.py carracing report && python benchmarks/world_models.py carracing ship   # commit 54ec572",
            "# round 6 (this report), continuing the same runs/carracing at commit ac87c32 (round 5 moves to runs/carracing/round-6/):",
            "python benchmarks/world_models.py carracing iterate        # 10 real episodes of round 5's main controller, then 100k steps it drives: 22 min",
            "python benchmarks/world_models.py carracing fit            # on the 400k steps of rounds 3-6, from round 5's model: 16 min",
            "OMP_NUM_THREADS=1 python benchmarks/world_models.py carracing train --jobs 2 --train-minutes 6   # 4 taus x 2 seeds: 24 min",
            "python benchmarks/world_models.py carracing evaluate       # each tau's dream pick of its 2 seeds, the noise row, random",
            "python benchmarks/world_models.py carracing report && python benchmarks/world_models.py carracing ship   # commit e518100",
            "# round 7 (this report): no new data; the round-6 model, CMA-ES continued, and the protocol fixed after round 6:",
            "mkdir runs/carracing/round6-final && mv runs/carracing/{model,model.checkpoints,cmaes-tau*,eval-tau*.json} runs/carracing/round6-final/",
            "cp -r runs/carracing/round6-final/model runs/carracing/round6-final/cmaes-tau* runs/carracing/",
            "OMP_NUM_THREADS=1 python benchmarks/world_models.py carracing train --jobs 2 --train-minutes 6   # resumes each run: 6 more min",
            "python benchmarks/world_models.py carracing evaluate       # each tau's dream pick (tau 1.15 on 100 tracks, the others on 20), random",
            "python benchmarks/world_models.py carracing select         # the best tau on seeds 0-19, then 100 fresh tracks from seed 500100",
            "python benchmarks/world_models.py carracing report && python benchmarks/world_models.py carracing ship",
        ],
        paper=["World Models trained the CarRacing controller in the REAL env: 906 ± 21 over 100 tracks "
               "(V + M features); 'solved' is 900. The paper reports no dream-only CarRacing result."],
        note=("**Where this stands (2026-11-23, round 7): the first bar is met. Under the protocol fixed after round 6, before "
              "round 7 ran, the agent trained only in the dream scores 768 ± 259 on 100 fresh real tracks** (seeds 500100-500199, "
              "used by no run before; the aim of 900 is not reached). The protocol: the headline agent is the tau whose dream pick "
              "scores highest on the sweep's 20 real tracks (seeds 0-19), then scored on the 100 fresh tracks (`python "
              "benchmarks/world_models.py carracing select`, candidates taus). It chose tau 1.3 (662 on seeds 0-19, against 643 for"
              " tau 1.15, 485 for 0.5 and 452 for 1.0); its controller is in results/carracing_selected/ and drives the demo. The "
              "rule of rounds 4-6, the tau 1.15 dream pick over 100 test tracks, gives 721 ± 279 (round 6: 439 ± 334, round 5: 424,"
              " round 4: 343); random -33 ± 6. What round 7 changed: no new data and no refit; the round-6 model (fitted on the "
              "400k real steps of rounds 3-6, 800k real steps behind it in all) and every CMA-ES run continued for 6 more minutes, "
              "from 35-37 to 60-65 generations (64 candidates x 4 dream rollouts, one core per run). The evaluate stage then picked"
              " each tau's controller in the dream alone, as before. What the rounds showed: (1) The CMA-ES budget was the limit in"
              " round 6, more than the model: the same model and the same temperatures, 25 more generations, and tau 1.15 went from"
              " 439 to 721 and 1.3 from 547 to 662 (20 tracks). (2) The temperature lesson of the paper shows again with the longer"
              " search: at tau 0.5 the dream return rose to 1026 and the real one fell from 681 to 485 ± 354 (20 tracks): the cold "
              "dream is exploited; round 6's 0.5 row, which looked best, was an early stop. tau 1.0: dream 789 / real 452 ± 283; "
              "1.15: 799 / 721; 1.3: 746 / 662. (3) The dream does not model exits from the playfield (-100, the episode ends). Its"
              " termination head never predicts them (held-out recall 0): the playfield's edge is not drawn, so a frame barely "
              "shows one coming. Weighting real ends x20 in the termination loss (`gym-dream fit --data runs/carracing/data --out "
              "runs/carracing/refit7-end-weight20/model --init runs/carracing/round6-final/model --vae-channels 16 32 64 128 "
              "--vae-epochs 3 --vae-frames 50000 --rnn-epochs 30 --half --threads 2 --end-weight 20`, 19 min) raised held-out "
              "recall to 0.75 but flagged 0.9% of the other steps, and in the dream it ended 19-27% of round 6's careful tau 0.5 "
              "driver's episodes mid-track (real exits: 0 of 180 tracks) and only 8-15% of the fast tau 1.15 driver's (real: 54 of "
              "100), the wrong way round ([carracing_dream_ends.json](carracing_dream_ends.json), `python benchmarks/dream_ends.py "
              "--models runs/carracing/round6-final/model runs/carracing/refit7-end-weight20/model --controllers "
              "runs/carracing/round6-final/cmaes-tau0.5-seed1/mean runs/carracing/round6-final/cmaes-tau1.15-seed1/mean --taus 0.5 "
              "1.15 --out results/carracing_dream_ends.json`), so round 7 kept the round-6 model. On round 5's fresh 100k steps, "
              "round 4's reward head had predicted the -100 exits as -23, -6 and -2 "
              "([carracing_reward_check.json](carracing_reward_check.json), `python benchmarks/reward_check.py "
              "runs/carracing/round-5/model runs/carracing/data --from-episode 213 --out results/carracing_reward_check.json`). (4)"
              " How round 6's main agent failed: on the 100 test tracks it finished 25 laps, ran out of time on 21 and left the "
              "playfield on 54 ([carracing_round6_episodes_tau1.15.json](carracing_round6_episodes_tau1.15.json); its round-6 tau "
              "0.5 controller, picked after that sweep: 675 ± 263 on seeds 20-99 and 739 ± 246 on seeds 500000-500099, no exits, "
              "[carracing_round6_episodes_tau0.5_fresh.json](carracing_round6_episodes_tau0.5_fresh.json); commands of the form "
              "`python benchmarks/carracing_episodes.py runs/carracing/round6-final/cmaes-tau1.15-seed1/mean --model "
              "runs/carracing/model --seeds 0 100 --out FILE`). How the headline agent ends its 100 fresh tracks: 63 laps (mean 911), 26 out of time (mean 642, 74% of the track) and 11 exits from the playfield (mean 251, after 41% of the track) ([carracing_episodes_selected.json](carracing_episodes_selected.json), `python benchmarks/carracing_episodes.py results/carracing_selected --model runs/carracing/model --seeds 500100 500200 --out results/carracing_episodes_selected.json`). Round "
              "6's records (model, controllers, rows) are in runs/carracing/round6-final/, its controllers also at commit e518100. "
              "What limits it now: exits the dream cannot see; data (400k real steps in the last fit, 800k over all rounds, 8% of "
              "the paper's 10M frames); CMA-ES budget (the population means were still rising at 60-65 generations; the paper used "
              "16 rollouts per candidate, we use 4). Not re-run for this model: PPO (the round-2 model's PPO scored 32 ± 81), the "
              "noise row (dropped: in round 6 the rounds' OU noise scored 411 against 439 without it) and the real-env CMA-ES "
              "comparison row, whose stopped run (population mean 492 after 317k of 400k real steps, still rising) is carried over."),
    ),
}


def quick(e: Experiment) -> Experiment:
    """Tiny budgets: checks the whole path in minutes, numbers mean nothing."""
    return replace(
        e, collect={**e.collect, "episodes": 6, "steps": 3000 if e.name == "carracing" else None},
        fit={**{k: v for k, v in e.fit.items() if k not in ("z_dim", "hidden", "vae_channels", "seq_len")},
             "preset": "tiny", "vae_epochs": 1, "rnn_epochs": 2, "vae_frames": 2000},
        iterate={**e.iterate, "steps": 1000, "check_episodes": 1, "refit": {"vae_epochs": 1, "rnn_epochs": 1}} if e.iterate else {},
        select={**e.select, "episodes": 1} if e.select else {},
        cmaes=dict(generations=2, popsize=4, rollouts=2), episodes=2, sweep_episodes=2, random_episodes=2, taus=(e.main_tau,),
        sb3={a: {**kw, "timesteps": 256, "num_envs": 4, "eval_every": 128, "eval_episodes": 2} for a, kw in e.sb3.items()},
    )


def _work(args, e: Experiment) -> Path:
    return Path(args.work or ROOT / "runs" / e.name)


def stage_collect(e: Experiment, work: Path) -> None:
    print(json.dumps(collect(CollectConfig(env_id=e.real_id, out=str(work / "data"), **e.collect))))


def _shown(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def _round_no(path: Path) -> int:
    return int(path.name.split("-")[1])


def _rounds(work: Path) -> list[Path]:
    return sorted(work.glob("round-*"), key=_round_no)


def _adopted(work: Path) -> dict[str, Any]:
    """What ``adopt`` recorded about the earlier rounds of a shipped model ({} when the work folder holds them all)."""
    path = work / "adopted.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _all_rounds(work: Path) -> list[dict[str, Any]]:
    """Every collection round behind the current model: the adopted model's (from its card), then this folder's."""
    return [*_adopted(work).get("collection_rounds", []), *[json.loads((p / "round.json").read_text()) for p in _rounds(work)]]


def _real_steps(work: Path, card: dict[str, Any]) -> int:
    """Real steps behind the current model: its dataset's, plus those of an adopted model's dataset."""
    return int(card["data"]["steps"]) + int(_adopted(work).get("real_steps", 0))


def stage_fit(e: Experiment, work: Path, device: str, rnn_minutes: float | None = None, init: str | None = None) -> None:
    """Fit ``work/model`` on ``work/data``. After a collection round the fit starts from the last round's model with the
    shorter ``iterate["refit"]`` budget; ``init`` (a model directory) names the starting model instead, e.g. to refit the
    same data with changed settings from a model moved aside."""
    if (work / "model" / "model.json").is_file():
        print(f"{work / 'model'} exists; delete it to fit again")
        return
    kwargs = dict(e.fit)
    rounds = _rounds(work)
    if (rounds or init) and e.iterate.get("refit"):  # after a collection round: start from the last round's model
        kwargs.update(e.iterate["refit"], init=init or str(rounds[-1] / "model"))
    elif init:
        kwargs.update(init=init)
    fit(FitConfig(data=str(work / "data"), out=str(work / "model"), device=device, rnn_minutes=rnn_minutes, **kwargs))


def _run_dir(work: Path, tau: float, seed: int = 0) -> Path:
    """The folder of one CMA-ES run: seed 0 in cmaes-tau<tau>/ (as before seeds were added), seed k in cmaes-tau<tau>-seed<k>/."""
    return work / (f"cmaes-tau{tau}" if seed == 0 else f"cmaes-tau{tau}-seed{seed}")


def _controller_id(seed: int, kind: str) -> str:
    """How rows and rounds name a controller: 'best' / 'mean' of seed 0's run, 'seed<k>/best' of seed k's."""
    return kind if seed == 0 else f"seed{seed}/{kind}"


def _controller_dir(work: Path, tau: float, controller: str) -> Path:
    seed, _, kind = controller.rpartition("/")
    return _run_dir(work, tau, int(seed[4:]) if seed else 0) / kind


def _train_one(e: Experiment, work: Path, tau: float, device: str, max_seconds: float | None, seed: int = 0) -> dict[str, Any]:
    return train_cmaes(CMAESConfig(env_id=e.dream_id, model=str(work / "model"), out=str(_run_dir(work, tau, seed)), tau=tau,
                                   device=device, max_seconds=max_seconds, seed=seed, **e.cmaes))


def stage_train(e: Experiment, work: Path, device: str, jobs: int = 1, max_seconds: float | None = None) -> None:
    """CMA-ES at every tau of the sweep, once per seed of ``cmaes_seeds``; ``jobs`` > 1 trains several runs at once
    in separate processes (on a GPU they share the device: each dream step is latency-bound, so they overlap well)."""
    runs = [(tau, seed) for tau in e.taus for seed in e.cmaes_seeds]
    if jobs <= 1:
        for tau, seed in runs:
            _train_one(e, work, tau, device, max_seconds, seed)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n = len(runs)
    with ProcessPoolExecutor(min(jobs, n), mp_context=mp.get_context("spawn")) as pool:
        for (tau, seed), r in zip(runs, pool.map(_train_one, [e] * n, [work] * n, [t for t, _ in runs], [device] * n,
                                                  [max_seconds] * n, [s for _, s in runs])):
            print(f"tau {tau}, seed {seed}: {r['generations']} generations, best dream fitness {r['best_fitness']:.1f}", flush=True)


def stage_iterate(e: Experiment, work: Path, workers: int = 2, round_no: int | None = None) -> None:
    """One more collection round (World Models' iterative procedure). The current model, controllers and
    their scores move to ``work/round-K/``; the dataset grows by ``iterate["steps"]`` real steps driven by
    the main-tau controller (best or mean, as the dream prefers) with exploration noise; fit, train and
    evaluate then start afresh on the grown dataset. Resumable: re-running finishes the round's collection.
    ``round_no`` (from ``all``): only start a new round while fewer than that many exist."""
    from trainers.data import count_episodes

    if not e.iterate:
        raise SystemExit(f"The {e.name} experiment has no iterate settings.")
    rounds = _rounds(work)
    if (work / "model" / "model.json").is_file() and (round_no is None or len(rounds) < round_no):
        if not (work / f"cmaes-tau{e.main_tau}").is_dir():
            raise SystemExit(f"No controller at tau {e.main_tau} to drive the round: run the train stage first.")
        kind, selection = pick_controller(e, work, e.main_tau)
        dest = work / f"round-{_round_no(rounds[-1]) + 1 if rounds else len(_adopted(work).get('collection_rounds', [])) + 1}"
        dest.mkdir()
        steps = count_episodes(work / "data")[1]
        moving = [work / "model", work / "model.checkpoints", *work.glob("cmaes-tau*"), *work.glob("eval-tau*.json"),
                  *[p for a in e.sb3 for p in work.glob(f"{a}-tau*")], *work.glob("eval-*-tau*.json"),
                  work / "select.json", work / "eval-selected.json"]
        for p in moving:
            if p.exists():
                p.rename(dest / p.name)
        info = {"controller": kind, "selection_dream_returns": selection, "tau": e.main_tau, "steps_before": steps,
                "target_steps": steps + e.iterate["steps"]}
        atomic_write_bytes(dest / "round.json", (json.dumps(info, indent=2) + "\n").encode())
        rounds.append(dest)
    if not rounds:
        raise SystemExit("Nothing to iterate from: run the fit and train stages first.")
    last = rounds[-1]
    info = json.loads((last / "round.json").read_text())
    controller = _controller_dir(last, info["tau"], info["controller"])
    n = int(e.iterate.get("check_episodes", 0))
    if n and "real_check" not in info:  # how the round's controller really drives: the case for this round
        returns, _ = real_episode_returns(LinearController.load(controller), e.real_id, str(last / "model"), n, seed=0, workers=workers)
        info["real_check"] = _stats(returns)
        atomic_write_bytes(last / "round.json", (json.dumps(info, indent=2) + "\n").encode())
        print(f"round {_round_no(last)}: the controller scores {returns.mean():.1f} ± {returns.std():.1f} over {n} real episodes "
              f"(dream {info['selection_dream_returns'][info['controller']]:.1f})", flush=True)
    settings = {k: v for k, v in e.iterate.items() if k not in ("rounds", "steps", "check_episodes", "refit")}
    r = collect(CollectConfig(env_id=e.real_id, out=str(work / "data"), steps=info["target_steps"], workers=e.collect.get("workers", 2),
                              seed=e.collect.get("seed", 0) + 1000 * _round_no(last), policy="controller",
                              policy_kwargs={"controller": str(controller), "model": str(last / "model"), **settings}))
    print(json.dumps(r))


def stage_adopt(e: Experiment, work: Path, shipped: Path | None = None, kept: Path | None = None, results: Path = RESULTS) -> None:
    """Start the next collection round from the SHIPPED model and its kept controller, when the work folder of
    the earlier rounds is gone (a fresh machine). The shipped model (``gym_dream/bundled/<name>``) and the
    controller kept next to the results become ``work/round-K/`` (K = the card's rounds + 1); the card's data,
    rounds and fits are recorded in ``work/adopted.json``, so reports and the shipped card count them. The next
    ``iterate`` collects the round's data into a fresh dataset, and ``fit`` starts from the adopted model."""
    shipped = shipped or ROOT / "gym_dream" / "bundled" / e.model_name.replace("-", "_")
    kept = kept or results / f"{e.name}_cmaes_tau{e.main_tau}"
    if (work / "adopted.json").is_file():
        print(f"{work} already adopted {_adopted(work)['from']}")
        return
    if (work / "model").exists() or _rounds(work) or (work / "data").exists():
        raise SystemExit(f"{work} already holds a model, rounds or data: adopt starts a fresh work folder "
                         "(pass --work for a new one).")
    if not (shipped / "model.json").is_file() or not (kept / "controller.json").is_file():
        raise SystemExit(f"Nothing to adopt: needs the shipped model {_shown(shipped)} and the controller {_shown(kept)} "
                         f"(run the ship stage once).")
    import subprocess

    card = read_card(shipped)
    earlier = card["data"].get("collection_rounds", [])
    dest = work / f"round-{len(earlier) + 1}"
    shutil.copytree(shipped, dest / "model", ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    controller = LinearController.load(kept)
    controller.save(dest / f"cmaes-tau{e.main_tau}" / "mean", {k: v for k, v in controller.card.items()
                                                                if k not in ("format", "format_version", "feature_dim", "action_space")})
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    adopted = {"from": _shown(shipped), "controller": _shown(kept), "commit": commit, "real_steps": card["data"]["steps"],
               "episodes": card["data"]["episodes"], "policies": card["data"]["policies"], "collection_rounds": earlier,
               "fits_seconds": card["training"].get("fits_seconds", [card["training"]["seconds"]]),
               "scores": card.get("scores", {})}
    previous = results / f"{e.name}.json"  # a real-env baseline stopped before its budget: its progress, carried over
    if previous.is_file() and json.loads(previous.read_text()).get("real_env_cmaes_partial"):
        adopted["real_env_cmaes_partial"] = json.loads(previous.read_text())["real_env_cmaes_partial"]
    _, selection = pick_controller(e, dest, e.main_tau)
    info = {"controller": "mean", "selection_dream_returns": selection, "tau": e.main_tau, "steps_before": 0,
            "target_steps": e.iterate["steps"], "adopted": True}
    atomic_write_bytes(dest / "round.json", (json.dumps(info, indent=2) + "\n").encode())
    atomic_write_bytes(work / "adopted.json", (json.dumps(adopted, indent=2) + "\n").encode())
    print(f"adopted {_shown(shipped)} ({card['data']['steps']} real steps, {len(earlier)} rounds) and {_shown(kept)} as "
          f"{_shown(dest)}; next: iterate, fit, train")


def _row_path(work: Path, tau: float, noise: bool = False) -> Path:
    return work / f"eval-tau{tau}{'-noise' if noise else ''}.json"


def _cmaes_rows(e: Experiment, work: Path) -> list[dict[str, Any]]:
    """The evaluated CMA-ES rows: one per tau, and the main tau's with noise when the experiment has it."""
    paths = [_row_path(work, t) for t in e.taus] + ([_row_path(work, e.main_tau, noise=True)] if e.noise_row else [])
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def dream_scores(e: Experiment, work: Path, tau: float, episodes: int = 100) -> dict[str, float]:
    """Mean return over fresh dream episodes (the same seeds for all) of every controller trained at ``tau``: 'best'
    (the best candidate seen, whose score is a lucky maximum over noisy dream rollouts) and 'mean' (CMA-ES's mean)
    of each seed's run, keyed as rows name them (:func:`_controller_id`)."""
    from trainers.evaluate import dream_episode_returns

    scores = {}
    for seed in e.cmaes_seeds:
        for kind in ("best", "mean"):
            path = _run_dir(work, tau, seed) / kind
            if (path / "controller.json").is_file():
                agent = LinearController.load(path)
                scores[_controller_id(seed, kind)] = float(dream_episode_returns(agent, e.dream_id, str(work / "model"), tau, episodes,
                                                                                  seed=2_000_000).mean())
    return scores


def pick_controller(e: Experiment, work: Path, tau: float, episodes: int = 100) -> tuple[str, dict[str, float]]:
    """The controller trained at ``tau`` that scores highest over fresh dream episodes, over every seed's run and
    both of its outputs: chosen in the dream alone. Returns its name and every candidate's dream score."""
    scores = dream_scores(e, work, tau, episodes)
    if not scores:
        raise SystemExit(f"No CMA-ES controller trained at tau {tau} in {work}: run the train stage first.")
    return max(scores, key=scores.get), scores


def stage_evaluate(e: Experiment, work: Path, workers: int) -> None:
    model = str(work / "model")
    for tau in e.taus:
        path = _row_path(work, tau)
        if path.is_file():
            continue
        kind, selection = pick_controller(e, work, tau)
        print(f"tau {tau}: dream returns for selection {selection}: evaluating '{kind}'", flush=True)
        agent = LinearController.load(_controller_dir(work, tau, kind))
        n = e.episodes if tau == e.main_tau else e.sweep_episodes
        runs = f", the best in the dream of {len(e.cmaes_seeds)} seeds" if len(e.cmaes_seeds) > 1 else ""
        row = evaluate(agent, e.dream_id, model, taus=(tau,), episodes=n, dream_episodes=100, name=f"CMA-ES linear, trained at tau={tau}{runs}", workers=workers)
        row.update(controller=kind, selection_dream_returns=selection)
        atomic_write_bytes(path, json.dumps(row, indent=2).encode())
        print(f"tau {tau}: dream {row['dream'][str(tau)]['mean']:.1f}, real {row['real']['mean']:.1f} ± {row['real']['std']:.1f}")
    path = _row_path(work, e.main_tau, noise=True)
    if e.noise_row and e.main_tau in e.taus and not path.is_file():
        base = json.loads(_row_path(work, e.main_tau).read_text())
        agent = LinearController.load(_controller_dir(work, e.main_tau, base["controller"]))
        sigma, theta = e.noise_row["sigma"], e.noise_row.get("theta", 0.15)
        noisy = _noisy(e, agent)
        row = evaluate(noisy, e.dream_id, model, taus=(e.main_tau,), episodes=e.episodes, dream_episodes=100,
                       name=f"CMA-ES linear, trained at tau={e.main_tau}, run with the rounds' OU action noise (sigma {sigma}, theta {theta})", workers=workers)
        row.update(controller=base["controller"], noise={"sigma": sigma, "theta": theta})
        atomic_write_bytes(path, json.dumps(row, indent=2).encode())
        print(f"tau {e.main_tau} with noise: dream {row['dream'][str(e.main_tau)]['mean']:.1f}, real {row['real']['mean']:.1f} ± {row['real']['std']:.1f}")
    path = work / "eval-random.json"
    if not path.is_file():
        t0 = time.time()
        space = gym.make(e.dream_id, model=model).action_space
        returns, lengths = real_episode_returns(RandomAgent(space, seed=0), e.real_id, model, e.random_episodes, seed=0, workers=workers)
        row = {"agent": "random policy", "real": _stats(returns), "real_steps": int(lengths.sum()), "seconds": round(time.time() - t0, 1)}
        atomic_write_bytes(path, json.dumps(row, indent=2).encode())


def _noisy(e: Experiment, agent: LinearController):
    from trainers.noise import WithActionNoise

    return WithActionNoise(agent, agent.action_space, e.noise_row["sigma"], e.noise_row.get("theta", 0.15))


def _candidate_name(c: dict[str, Any]) -> str:
    return (f"tau {c['tau']}, {c['controller'].replace('/', ' ')}{' (seed 0)' if '/' not in c['controller'] else ''}"
            f"{', with OU noise' if c['noise'] else ''}")


def _validation(e: Experiment) -> tuple[int, int, int, str]:
    """``select``'s validation episodes, first validation seed, first test seed and kind of candidates, checked."""
    n, first = int(e.select["episodes"]), int(e.select.get("seed", 100_000))
    test, kind = int(e.select.get("test_seed", 0)), e.select.get("candidates", "runs")
    if kind not in ("runs", "taus"):
        raise SystemExit(f"select candidates {kind!r}: choose 'runs' (each CMA-ES run's dream pick) or 'taus' (each tau's evaluated row).")
    if first < test + e.episodes and test < first + n:
        raise SystemExit(f"select seed {first} overlaps the test seeds {test}..{test + e.episodes - 1}: "
                         "validation and test tracks must be disjoint (move select's seed or test_seed).")
    return n, first, test, kind


def _sweep_candidates(e: Experiment, work: Path, n: int, first: int) -> list[dict[str, Any]]:
    """One candidate per tau: the controller its evaluate row scored (the dream's pick of that tau's runs). Its validation
    episodes are taken from the row when the row drove those seeds (same seeds, same episodes), else left to run."""
    out = []
    for tau in e.taus:
        path = _row_path(work, tau)
        if not path.is_file():
            raise SystemExit(f"select with candidates 'taus' needs every tau's row: run the evaluate stage first ({path} is missing).")
        row = json.loads(path.read_text())
        c = {"tau": tau, "controller": row["controller"], "noise": False, "dream": next(iter(row["dream"].values()))["mean"]}
        lo, hi = row.get("real_seeds", [0, -1])
        if lo <= first and first + n - 1 <= hi and "real_returns" in row and "real_lengths" in row:
            k = first - lo
            returns, lengths = np.asarray(row["real_returns"][k:k + n]), np.asarray(row["real_lengths"][k:k + n])
            c.update(real=_stats(returns), real_steps=int(lengths.sum()), real_returns=[round(float(x), 2) for x in returns],
                     from_row=path.name)
        out.append(c)
    return out


def stage_select(e: Experiment, work: Path, workers: int) -> None:
    """Choose ONE agent on real validation tracks, then score it on test tracks it never drove. Candidates
    (``select["candidates"]``): 'runs', each CMA-ES run's dream pick ('best' or 'mean', per seed and tau), run
    deterministically and, if the experiment has a noise row, with that noise; or 'taus', each tau's evaluated row
    (its dream pick over that tau's runs). Each gets ``select["episodes"]`` real episodes from seed ``select["seed"]``
    (a row that already drove those seeds lends its episodes); the winner is scored on ``episodes`` test tracks from
    ``select["test_seed"]`` (default 0, the test seeds of every row). Validation and test seeds never overlap. Every
    agent was still trained only in the dream; the real steps spent choosing are counted in the row. Resumable:
    ``work/select.json`` grows one candidate at a time."""
    if not e.select:
        raise SystemExit(f"The {e.name} experiment has no select settings.")
    n, first, test, kind = _validation(e)
    model = str(work / "model")
    path = work / "select.json"
    state = json.loads(path.read_text()) if path.is_file() else {"episodes": n, "seed": first, "candidates": []}
    done = {(c["tau"], c["controller"], c["noise"]) for c in state["candidates"]}
    if kind == "taus":
        todo = _sweep_candidates(e, work, n, first)
    else:
        todo = []
        for tau in e.taus:
            scores = dream_scores(e, work, tau)
            for seed in e.cmaes_seeds:
                own = {k: v for k, v in scores.items() if _controller_dir(work, tau, k).parent == _run_dir(work, tau, seed)}
                if own:
                    controller = max(own, key=own.get)
                    todo += [{"tau": tau, "controller": controller, "noise": noise, "dream": own[controller]}
                             for noise in ((False, True) if e.noise_row else (False,))]
    for c in todo:
        if (c["tau"], c["controller"], c["noise"]) in done:
            continue
        if "real" not in c:
            agent = LinearController.load(_controller_dir(work, c["tau"], c["controller"]))
            returns, lengths = real_episode_returns(_noisy(e, agent) if c["noise"] else agent, e.real_id, model, n, seed=first, workers=workers)
            c.update(real=_stats(returns), real_steps=int(lengths.sum()), real_returns=[round(float(x), 2) for x in returns])
        state["candidates"].append(c)
        atomic_write_bytes(path, (json.dumps(state, indent=2) + "\n").encode())
        print(f"validation, {_candidate_name(c)}: dream {c['dream']:.0f}, real {c['real']['mean']:.0f} ± {c['real']['std']:.0f} "
              f"over {n} tracks{' (from ' + c['from_row'] + ')' if c.get('from_row') else ''}", flush=True)
    win = max(state["candidates"], key=lambda c: c["real"]["mean"])
    out = work / "eval-selected.json"
    if out.is_file() and json.loads(out.read_text())["selection"]["chosen"] == win:
        return
    tau = win["tau"]
    same = _row_path(work, tau, noise=win["noise"])  # already scored on the test tracks by evaluate: the same episodes
    row = json.loads(same.read_text()) if same.is_file() else None
    if not (row and row.get("controller") == win["controller"] and row["real"]["episodes"] == e.episodes
            and row.get("real_seeds", [0])[0] == test):
        agent = LinearController.load(_controller_dir(work, tau, win["controller"]))
        row = evaluate(_noisy(e, agent) if win["noise"] else agent, e.dream_id, model, taus=(tau,), episodes=e.episodes,
                       dream_episodes=100, seed=test, name="selected", workers=workers)
        row.update(controller=win["controller"], **({"noise": dict(e.noise_row)} if win["noise"] else {}))
    tracks = f", test tracks seeds {test}-{test + e.episodes - 1}" if test else ""
    row["agent"] = (f"CMA-ES linear, trained at tau={tau} ({_candidate_name(win)}), **chosen on {n} real validation tracks** "
                    f"among {len(state['candidates'])} candidates{tracks}")
    row["selection"] = {"chosen": win, "candidates": len(state["candidates"]), "kind": kind, "episodes": n, "seeds": [first, first + n - 1],
                        "real_steps": sum(c["real_steps"] for c in state["candidates"])}
    atomic_write_bytes(out, (json.dumps(row, indent=2) + "\n").encode())
    print(f"chosen: {_candidate_name(win)} (validation {win['real']['mean']:.0f}); test: real {row['real']['mean']:.1f} ± "
          f"{row['real']['std']:.1f} over {row['real']['episodes']} episodes from seed {test}")


def _sb3_row_path(work: Path, algo: str, tau: float) -> Path:
    return work / f"eval-{algo}-tau{tau}.json"


def stage_sb3(e: Experiment, work: Path, workers: int, device: str) -> None:
    """Each SB3 agent of the experiment, trained only in the dream at ``main_tau``, scored like the controllers."""
    from trainers.evaluate import load_agent
    from trainers.sb3 import SB3Config, train_sb3

    model, tau = str(work / "model"), e.main_tau
    for algo, kwargs in e.sb3.items():
        out = work / f"{algo}-tau{tau}"
        if not (out / "agent.zip").is_file():
            train_sb3(SB3Config(algo=algo, env_id=e.dream_id, model=model, out=str(out), tau=tau, device=device, **kwargs))
        path = _sb3_row_path(work, algo, tau)
        if not path.is_file():
            agent = load_agent(out / "agent.zip", algo)
            row = evaluate(agent, e.dream_id, model, taus=(tau,), episodes=e.sweep_episodes, dream_episodes=100,
                           name=f"{algo.upper()} ({kwargs.get('timesteps')} dream steps), trained at tau={tau}", workers=workers)
            atomic_write_bytes(path, json.dumps(row, indent=2).encode())
            print(f"{algo} tau {tau}: dream {row['dream'][str(tau)]['mean']:.1f}, real {row['real']['mean']:.1f} ± {row['real']['std']:.1f}")


def stage_real_baseline(e: Experiment, work: Path, workers: int) -> None:
    """The same controller trained by CMA-ES on the real env, with the real steps the dream's data cost."""
    from trainers.cmaes import train_cmaes_real

    if not e.real_baseline:
        return
    budget = _real_steps(work, read_card(work / "model"))
    train_cmaes_real(e.real_id, str(work / "model"), work / "cmaes-real", budget, popsize=16, workers=workers)
    path = work / "eval-real-cmaes.json"
    if not path.is_file():
        agent = LinearController.load(work / "cmaes-real" / "mean")
        returns, lengths = real_episode_returns(agent, e.real_id, str(work / "model"), e.episodes, seed=0, workers=workers)
        row = {"agent": f"CMA-ES linear trained on the REAL env ({budget} real steps, CMA mean)", "real": _stats(returns), "real_steps": int(lengths.sum())}
        atomic_write_bytes(path, json.dumps(row, indent=2).encode())


def _learning_curves(e: Experiment, work: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, tau in enumerate(e.taus):
        for seed in e.cmaes_seeds:
            log = _run_dir(work, tau, seed) / "log.jsonl"
            if log.is_file():
                rows = [json.loads(line) for line in log.read_text().splitlines()]
                ax.plot([r["generation"] for r in rows], [r["mean_fitness"] for r in rows], color=f"C{i}",
                        label=f"tau {tau} (population mean{', each seed' if len(e.cmaes_seeds) > 1 else ''})" if seed == e.cmaes_seeds[0] else None)
    ax.set_xlabel("CMA-ES generation")
    ax.set_ylabel("dream return")
    ax.set_title(f"{e.dream_id}: CMA-ES in the dream")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _evaluated_controller(work: Path, tau: float) -> Path:
    """The controller directory the evaluate stage scored at ``tau`` ('best' or 'mean')."""
    row = _row_path(work, tau)
    kind = json.loads(row.read_text()).get("controller", "best") if row.is_file() else "best"
    return _controller_dir(work, tau, kind)


def _cmaes_device(work: Path, e: Experiment) -> str:
    path = _evaluated_controller(work, e.main_tau) / "controller.json"
    return json.loads(path.read_text()).get("config", {}).get("device", "cpu") if path.is_file() else "cpu"


def _selection_note(e: Experiment, work: Path, selected: dict[str, Any]) -> str:
    """The (***) footnote: how the validation-chosen row was chosen, with every candidate's scores."""
    sel = selected["selection"]
    state = json.loads((work / "select.json").read_text())
    table = ["| candidate | dream (100 ep) | real, validation tracks |", "|---|---|---|"]
    table += [f"| {_candidate_name(c)} | {c['dream']:.0f} | {c['real']['mean']:.0f} ± {c['real']['std']:.0f} |" for c in state["candidates"]]
    test = selected.get("real_seeds", [0, 0])
    how = (f"each tau's row above (the dream's pick of that tau's runs) is a candidate, scored on the sweep's first {sel['episodes']} real "
           f"tracks (seeds {sel['seeds'][0]}-{sel['seeds'][1]}, episodes the rows had already driven); the best mean was then scored on "
           f"{test[1] - test[0] + 1} fresh test tracks (seeds {test[0]}-{test[1]}) that no row had driven."
           if sel.get("kind") == "taus" else
           f"each CMA-ES run's dream pick{', run deterministically and with the rounds OU noise,' if e.noise_row else ''} drove the same "
           f"{sel['episodes']} real tracks (seeds {sel['seeds'][0]}-{sel['seeds'][1]}, none of them a test track); the best mean was "
           "then scored on the test tracks above.")
    return (f"(***) Chosen on real validation tracks (`python benchmarks/world_models.py {e.name} select`): {how} "
            f"Still trained only in the dream, but chosen with {sel['real_steps']} real steps, so it is not a "
            "dream-only result like the rows chosen in the dream; its validation score is a maximum over "
            f"{sel['candidates']} noisy means, so expect the test score lower.\n\n" + "\n".join(table) + "\n")


def stage_report(e: Experiment, work: Path, results: Path = RESULTS) -> None:
    from trainers.video import DreamVideoConfig, write_dream_video

    results.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    card = read_card(model)
    rows = _cmaes_rows(e, work)
    sb3_rows = [json.loads(_sb3_row_path(work, a, e.main_tau).read_text()) for a in e.sb3 if _sb3_row_path(work, a, e.main_tau).is_file()]
    rnd = json.loads((work / "eval-random.json").read_text()) if (work / "eval-random.json").is_file() else None
    real_cma_partial = None
    real_cma = json.loads((work / "eval-real-cmaes.json").read_text()) if (work / "eval-real-cmaes.json").is_file() else None
    adopted = _adopted(work)
    real_steps = _real_steps(work, card)
    curves = results / f"{e.name}_cmaes.png"
    _learning_curves(e, work, curves)
    gif = results / f"{e.name}_real_vs_dream.gif"
    main_agent = _evaluated_controller(work, e.main_tau)
    write_dream_video(DreamVideoConfig(model=str(model), env_id=e.dream_id, out=str(gif), steps=150, compare=True, seed=3,
                                       agent=str(main_agent) if main_agent.is_dir() else None, fps=20))
    import imageio.v2 as imageio  # half size, every other frame: a few MB less in the repository

    frames = imageio.mimread(gif)
    imageio.mimsave(gif, [f[::2, ::2, :3] for f in frames[::2]], duration=100, loop=0)
    h = card["training"]["heldout"]
    t = card["training"]
    lines = [
        f"# {e.real_id} from dreams alone", "",
        *(["Reproduce the run reported here (`python benchmarks/world_models.py " + e.name + " all` runs every stage with the "
            "same budgets on one machine, CPU by default):", "", "```bash", *e.reproduce, "```", ""] if e.reproduce else
          [f"Reproduce: `python benchmarks/world_models.py {e.name} all` (2-core CPU, no GPU).", ""]),
        f"Every agent below was trained only in `{e.dream_id}` and never touched the real game while training; real scores "
        "come through `DreamObservation` (real seeds 0..N-1), dream scores from 100 dream episodes at the training tau.", "",
        "| agent | dream return (tau, 100 ep) | real return | real episodes | exploits dream? |", "|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: float(next(iter(r["dream"])))):
        tau, d = next(iter(r["dream"].items()))
        lines.append(f"| {r['agent']}{' (CMA-ES mean)' if str(r.get('controller')).endswith('mean') else ''} | {d['mean']:.0f} ± {d['std']:.0f} | **{r['real']['mean']:.0f} ± {r['real']['std']:.0f}** | "
                     f"{r['real']['episodes']} | {'**yes**' if exploits_dream(d, r['real']) else 'no'} |")
    selected = json.loads((work / "eval-selected.json").read_text()) if (work / "eval-selected.json").is_file() else None
    if selected:
        tau, d = next(iter(selected["dream"].items()))
        lines.append(f"| {selected['agent']} (***) | {d['mean']:.0f} ± {d['std']:.0f} | **{selected['real']['mean']:.0f} ± {selected['real']['std']:.0f}** | "
                     f"{selected['real']['episodes']} | {'**yes**' if exploits_dream(d, selected['real']) else 'no'} |")
    for r in sb3_rows:
        tau, d = next(iter(r["dream"].items()))
        lines.append(f"| {r['agent']} | {d['mean']:.0f} ± {d['std']:.0f} | **{r['real']['mean']:.0f} ± {r['real']['std']:.0f}** | "
                     f"{r['real']['episodes']} | {'**yes**' if exploits_dream(d, r['real']) else 'no'} |")
    if real_cma:
        lines.append(f"| {real_cma['agent']} | - | {real_cma['real']['mean']:.0f} ± {real_cma['real']['std']:.0f} | {real_cma['real']['episodes']} | - |")
    elif (work / "cmaes-real" / "log.jsonl").is_file():  # stopped before its budget: its progress, as progress
        log = [json.loads(x) for x in (work / "cmaes-real" / "log.jsonl").read_text().splitlines()]
        real_cma_partial = {"generations": len(log), "real_steps": log[-1]["real_steps"], "budget": real_steps,
                            "last_population_mean": log[-1]["mean_fitness"], "best_single_episode": max(x["max_fitness"] for x in log)}
    elif adopted.get("real_env_cmaes_partial"):  # stopped in the run whose model was adopted
        real_cma_partial = {**adopted["real_env_cmaes_partial"], "carried_over_from": adopted["commit"]}
    if real_cma_partial and not real_cma:
        q = real_cma_partial
        lines.append(f"| CMA-ES linear trained on the REAL env, **stopped** after {q['generations']} generations of 16 "
                     f"({q['real_steps']} of the {q['budget']} real steps budgeted; not evaluated)"
                     f"{' (**)' if q.get('carried_over_from') else ''} | - | "
                     f"last population mean {q['last_population_mean']:.0f} (one episode per candidate), best single episode "
                     f"{q['best_single_episode']:.0f} | - | - |")
    if rnd:
        lines.append(f"| random policy{' (*)' if rnd.get('note') else ''} | - | {rnd['real']['mean']:.0f} ± {rnd['real']['std']:.0f} | {rnd['real']['episodes']} | - |")
    lines += ["", *([f"(*) {rnd['note']}.", ""] if rnd and rnd.get("note") else []),
              *([f"(**) From the run of the model shipped at commit {str(real_cma_partial['carried_over_from'])[:7]}, with the {real_cma_partial['budget']} real steps "
                 "behind that run's model as its budget; its work folder was not kept.", ""]
                if real_cma_partial and real_cma_partial.get("carried_over_from") and not real_cma else []),
              *([_selection_note(e, work, selected)] if selected else []),
              *[f"For comparison: {p}" for p in e.paper], ""]
    if e.note:
        lines += [e.note, ""]
    rounds = _all_rounds(work)
    fits = [*adopted.get("fits_seconds", []), *[read_card(r / "model")["training"]["seconds"] for r in _rounds(work) if not
                                                 json.loads((r / "round.json").read_text()).get("adopted")], t["seconds"]]
    if rounds:
        lines += ["## Collection rounds (World Models' iterative procedure)", "",
                  f"The first {rounds[0]['steps_before']} real steps came from the recipe's policy ({(adopted or card['data'])['policies'][0]}); "
                  f"then each round's model and controllers (kept in `{_shown(work)}/round-K/`) handed over to a controller-driven round "
                  f"(`python benchmarks/world_models.py {e.name} iterate`; OU exploration noise sigma {e.iterate.get('sigma')}, theta "
                  f"{e.iterate.get('theta')}; each refit starts from the last model with {e.iterate.get('refit')}):", ""]
        if adopted:
            lines.append(f"Rounds 1-{len(adopted['collection_rounds'])} are those of the model shipped at commit {str(adopted['commit'])[:7]}; their work folder "
                         f"(data, models) was not kept. Round {len(adopted['collection_rounds']) + 1} started from what that run "
                         f"shipped, `{adopted['from']}` and `{adopted['controller']}` (`python benchmarks/world_models.py {e.name} adopt`), "
                         f"and its data start a fresh dataset: the current model was fitted on {card['data']['steps']} new real steps, "
                         f"starting from the weights of the adopted model ({adopted['real_steps']} earlier real steps). "
                         f"Real steps below count within each run's dataset.")
            lines.append("")
        for k, r in enumerate(rounds, 1):
            check = r.get("real_check")
            lines.append(f"- round {k}: the tau {r['tau']} controller (CMA-ES {r['controller']}) scored "
                         f"{r['selection_dream_returns'][r['controller']]:.0f} in its dream"
                         + (f" and {check['mean']:.0f} ± {check['std']:.0f} over {check['episodes']} real episodes" if check else "")
                         + f"; it then drove real steps {r['steps_before']} to {r['target_steps']} of the data.")
        lines.append("")
    lines += [
        "## Model and compute", "",
        f"- data: {card['data']['steps']} real steps, {card['data']['episodes']} episodes, policy {card['data']['policies']} "
        + (f"(after {adopted['real_steps']} real steps behind the adopted model; {real_steps} in all)" if adopted else
           f"(`python benchmarks/world_models.py {e.name} collect`)"),
        f"- fit: {t['seconds'] / 60:.0f} min"
        + (f" (the last of {len(fits)} fits, {sum(fits) / 60:.0f} min in all)" if len(fits) > 1 else "")
        + f" on {t['device'] if t.get('device', 'cpu') != 'cpu' else str(t['cpu_threads']) + ' CPU threads'}; VAE channels {t['hyperparameters']['vae_channels']}, "
        f"z {t['hyperparameters']['z_dim']}, LSTM {t['hyperparameters']['hidden']}, {t['hyperparameters']['mixtures']} mixtures; weights fp16",
        f"- held-out VAE: reconstruction {h['vae'].get('reconstruction', float('nan')):.1f} (squared error per 64x64x3 frame in [0,1]), "
        f"KL {h['vae'].get('kl', float('nan')):.1f}",
        f"- held-out MDN-RNN: NLL per latent dim {h['mdnrnn']['nll']:.3f}, reward MSE {h['mdnrnn']['reward_mse']:.4f}, "
        f"termination accuracy {h['mdnrnn']['termination_accuracy']:.4f}, recall on real ends {h['mdnrnn'].get('termination_recall', float('nan')):.3f}, "
        f"false alarms {h['mdnrnn'].get('termination_false_alarm_rate', float('nan')):.4f} ({h['mdnrnn']['transitions']} transitions)",
        f"- CMA-ES: population {e.cmaes['popsize']} x {e.cmaes['rollouts']} dream rollouts; generations per tau: "
        + ", ".join(f"tau {t}: {' / '.join(str(len((_run_dir(work, t, s) / 'log.jsonl').read_text().splitlines())) for s in e.cmaes_seeds if (_run_dir(work, t, s) / 'log.jsonl').is_file())}"
                    for t in e.taus if (_run_dir(work, t) / "log.jsonl").is_file())
        + (f" (seeds {', '.join(map(str, e.cmaes_seeds))})" if len(e.cmaes_seeds) > 1 else "")
        + "; wall time per tau in the json",
        f"- devices: fit on {t.get('device', 'cpu')}, CMA-ES dreams on {_cmaes_device(work, e)}; "
        f"this report written on {platform.machine()} with {os.cpu_count()} CPU cores", "",
        f"![CMA-ES learning curves]({curves.name})", "",
        f"Real frames (left, as the model sees them) next to the model's open-loop dream under the same actions (right): "
        f"![real vs dream]({gif.name})", "",
    ]
    for r in rows:
        log = _controller_dir(work, float(next(iter(r["dream"]))), str(r.get("controller", "best"))).parent / "log.jsonl"
        if log.is_file():
            r["train_seconds"] = json.loads(log.read_text().splitlines()[-1])["seconds"]
    atomic_write_bytes(results / f"{e.name}.md", ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(results / f"{e.name}.json", (json.dumps({"agents": rows, "selected": selected, "sb3_agents": sb3_rows, "random": rnd, "real_env_cmaes": real_cma, "real_env_cmaes_partial": real_cma_partial, "collection_rounds": rounds, "adopted": adopted or None, "real_steps": real_steps, "fits_seconds": fits, "model_card": {k: card[k] for k in ("data", "training")}}, indent=2) + "\n").encode())
    print("\n".join(lines))


def stage_ship(e: Experiment, work: Path) -> None:
    """The model becomes the shipped default of its id, staged exactly like an exported package."""
    dest = ROOT / "gym_dream" / "bundled" / e.model_name.replace("-", "_")
    stage_model_dir(work / "model", dest, e.dream_id, half=True)
    init = dest / "__init__.py"
    if not init.is_file():  # a package directory, so setuptools ships its data files
        init.write_text(f'"""The shipped default model of {e.dream_id} (data only: model.json + model.safetensors)."""\n')
    rows = _cmaes_rows(e, work)
    selected = work / "eval-selected.json"
    if rows:
        record_scores(dest, rows + ([json.loads(selected.read_text())] if selected.is_file() else []), f"results/{e.name}.md (python benchmarks/world_models.py {e.name} all)")
    rounds = _all_rounds(work)
    if rounds:  # the card states all the data and compute behind the model, not only its last refit
        path = dest / "model.json"
        shipped = json.loads(path.read_text())
        adopted = _adopted(work)
        shipped["data"]["collection_rounds"] = rounds
        if adopted:
            shipped["data"]["adopted"] = {k: adopted[k] for k in ("from", "commit", "real_steps", "episodes", "policies")}
            shipped["data"]["real_steps_in_all"] = _real_steps(work, shipped)
        fits = [*adopted.get("fits_seconds", []), *[read_card(r / "model")["training"]["seconds"] for r in _rounds(work)
                                                    if not json.loads((r / "round.json").read_text()).get("adopted")],
                shipped["training"]["seconds"]]
        shipped["training"]["fits_seconds"] = fits
        shipped["training"]["note"] = (f"{len(fits)} fits, each after a collection round and from the previous model "
                                       f"({sum(fits) / 60:.0f} min in all); 'seconds' is the last one")
        atomic_write_bytes(path, (json.dumps(shipped, indent=2) + "\n").encode())
    for tau in e.taus:  # each evaluated tau's controller, trained in this model's dream, next to the results (the demo scores the main one)
        evaluated = _evaluated_controller(work, tau)
        if tau != e.main_tau and not _row_path(work, tau).is_file() or not evaluated.is_dir():
            continue
        agent = LinearController.load(evaluated)
        kept = RESULTS / f"{e.name}_cmaes_tau{tau}"
        agent.save(kept, {**{k: v for k, v in agent.card.items() if k not in ("format", "format_version", "feature_dim", "action_space")},
                          "model": e.model_name, "trained_with": str(work / "model"), "tau": tau})
        print(f"kept the tau {tau} controller ({evaluated.relative_to(work)}) in {kept}")
    if selected.is_file():  # the validation-chosen one too, with the noise it ran with (gym-dream evaluate --action-noise)
        row = json.loads(selected.read_text())
        win = row["selection"]["chosen"]
        agent = LinearController.load(_controller_dir(work, win["tau"], win["controller"]))
        kept = RESULTS / f"{e.name}_selected"
        agent.save(kept, {**{k: v for k, v in agent.card.items() if k not in ("format", "format_version", "feature_dim", "action_space")},
                          "model": e.model_name, "trained_with": str(work / "model"), "tau": win["tau"],
                          "run_with_action_noise": dict(e.noise_row) if win["noise"] else None,
                          "test": row["real"], "test_seeds": row.get("real_seeds"), "selection": row["selection"]})
        print(f"kept the validation-chosen controller in {kept}")
    elif (RESULTS / f"{e.name}_selected").is_dir():  # chosen in an earlier model's dream (its round folder keeps it)
        shutil.rmtree(RESULTS / f"{e.name}_selected")
        print(f"removed {RESULTS / f'{e.name}_selected'}: no select row for this model")
    size = sum(f.stat().st_size for f in dest.iterdir()) / 2**20
    print(f"shipped {dest} ({size:.1f} MB); declare it in pyproject.toml [project.entry-points.\"gym_dream.models\"]")


STAGES = ["collect", "adopt", "fit", "train", "iterate", "evaluate", "select", "sb3", "real_baseline", "report", "ship"]


def all_stages(e: Experiment) -> list[str]:
    """``all``: collect, fit, train, then (iterate, fit, train) per collection round, then the rest."""
    return ["collect", "fit", "train", *["iterate", "fit", "train"] * int(e.iterate.get("rounds", 0)),
            "evaluate", *(["select"] if e.select else []), "sb3", "real_baseline", "report", "ship"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(EXPERIMENTS))
    p.add_argument("stage", choices=STAGES + ["all"])
    p.add_argument("--work", default=None, help="work folder (default: runs/<experiment>)")
    p.add_argument("--workers", type=int, default=2, help="processes for real-env evaluation")
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run of every stage")
    p.add_argument("--taus", type=float, nargs="+", default=None, help="only these taus of the sweep (train/evaluate)")
    p.add_argument("--generations", type=int, default=None, help="override the CMA-ES generations (a resumed run continues to this many)")
    p.add_argument("--device", default="cpu", help="torch device for fitting and for CMA-ES dreams (e.g. cuda)")
    p.add_argument("--collect-workers", type=int, default=None, help="parallel real envs while collecting (default: the experiment's)")
    p.add_argument("--init", default=None, help="fit: start from this model directory (e.g. to refit the same data with changed settings)")
    p.add_argument("--rnn-minutes", type=float, default=None, help="wall-time budget of the MDN-RNN fit (resumable: re-run to continue)")
    p.add_argument("--jobs", type=int, default=1, help="taus of the sweep trained at once, in separate processes")
    p.add_argument("--train-minutes", type=float, default=None, help="wall-time budget per tau for CMA-ES (resumable: re-run to continue)")
    a = p.parse_args()
    e = EXPERIMENTS[a.experiment]
    if a.quick:
        e = quick(e)
    if a.taus:
        unknown = set(a.taus) - set(e.taus)
        if unknown:
            p.error(f"--taus {sorted(unknown)} are not in this experiment's sweep {e.taus}")
        e = replace(e, taus=tuple(a.taus))
    if a.generations:
        e = replace(e, cmaes={**e.cmaes, "generations": a.generations})
    if a.collect_workers:
        e = replace(e, collect={**e.collect, "workers": a.collect_workers})
    work = _work(a, e)
    work.mkdir(parents=True, exist_ok=True)
    rounds_seen = 0
    for stage in all_stages(e) if a.stage == "all" else [a.stage]:
        if a.stage == "all" and stage == "ship" and a.quick:
            continue
        t0 = time.time()
        print(f"== {e.name}: {stage}", flush=True)
        if stage == "collect":
            stage_collect(e, work)
        elif stage == "adopt":
            stage_adopt(e, work)
        elif stage == "fit":
            stage_fit(e, work, a.device, a.rnn_minutes, a.init)
        elif stage == "iterate":
            rounds_seen += 1
            stage_iterate(e, work, a.workers, rounds_seen if a.stage == "all" else None)
        elif stage == "train":
            stage_train(e, work, a.device, a.jobs, None if a.train_minutes is None else 60 * a.train_minutes)
        elif stage == "evaluate":
            stage_evaluate(e, work, a.workers)
        elif stage == "select":
            stage_select(e, work, a.workers)
        elif stage == "sb3":
            stage_sb3(e, work, a.workers, a.device)
        elif stage == "real_baseline":
            stage_real_baseline(e, work, a.workers)
        elif stage == "report":
            stage_report(e, work, work / "results" if a.quick else RESULTS)  # a smoke run never overwrites results/
        elif stage == "ship":
            stage_ship(e, work)
        print(f"== {e.name}: {stage} done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
