"""Fit the dreamer family (DreamerV3's world model) on collected shards: ``gym-dream fit --family dreamer``.

The same shards (or a Minari dataset, converted by :func:`trainers.fit.dispatch.fit` first) as the other families. Sizes come
from :data:`trainers.fit.presets.DREAMER_PRESETS`; the loss, its weights, free bits, unimix and the optimiser are one set
for every env (DreamerV3's claim: no per-env tuning). Updates run on random ``batch`` x ``chunk`` windows; every
``UPDATES_PER_CHECKPOINT`` updates the model, the optimiser and the progress record are checkpointed atomically (as
``fit --family rssm`` does) and a re-run resumes there; each block's train and held-out metrics are a row of
``<checkpoint dir>/dreamer_log.csv``. The model directory holds the start-state bank (posterior modes of real first
observations of training episodes) and, in its card, the held-out metrics: reward MSE, the termination accuracy, recall
and false-alarm rate at the dream's 0.5 threshold, and the posterior-prior KL.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gym_dream.models import Dreamer
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict
from trainers.infra.checkpoints import Stage, save_model_dir
from trainers.data.dataset import EpisodeDataset
from trainers.fit.rssm import heldout_disagreement
from trainers.infra.folder_lock import held
from trainers.fit.presets import DREAMER_PRESETS, preset
from trainers.fit.start_bank import DEFAULT_HORIZON, bank_record, bank_steps, filtered_states
from trainers.fit.sequences import HeldOut, data_card, fit_stage, log_data, out_of_time, save_block, sequence_batch, train_on_chunks, training_record, windows
from trainers.infra.training_log import TrainingLog

logger = logging.getLogger(__name__)

UPDATES_PER_CHECKPOINT = 100
#: FitConfig fields a dreamer fit reads, and the preset entries they override
DREAMER_FIELDS = {"deter": "deter", "stoch": "stoch", "classes": "classes", "hidden": "hidden", "lr": "lr", "rnn_batch": "batch",
                  "seq_len": "chunk", "updates": "updates"}
#: the model's constructor arguments among a preset's entries
MODEL_KEYS = ("deter", "stoch", "classes", "hidden", "units", "layers", "blocks", "cnn_channels")


def dreamer_hyperparameters(cfg) -> dict[str, Any]:
    """The dreamer preset of a :class:`~trainers.fit.dispatch.FitConfig` with its fields on top."""
    p = preset(DREAMER_PRESETS, cfg.preset, "dreamer")
    for name, key in DREAMER_FIELDS.items():
        if getattr(cfg, name, None) is not None:
            p[key] = getattr(cfg, name)
    return p


def dreamer_for(meta: dict[str, Any], p: dict[str, Any], bank_size: int = 1) -> Dreamer:
    """A dreamer model for a dataset's spaces and preprocessing (``meta``), sized by preset ``p``."""
    kwargs = {k: (tuple(p[k]) if k == "cnn_channels" else p[k]) for k in MODEL_KEYS if k in p}
    return Dreamer(space_from_dict(meta["observation_space"]), space_from_dict(meta["action_space"]),
                   Preprocessing.from_dict(meta["preprocessing"]), bank_size=bank_size, **kwargs)


def train_dreamer(model: Dreamer, opt: torch.optim.Optimizer, ds: EpisodeDataset, steps: int, batch: int, chunk: int,
                  rng: np.random.Generator, g: torch.Generator, grad_clip: float, device: str, episodes: np.ndarray) -> dict[str, float]:
    """``steps`` updates on random chunks of ``episodes``; returns the mean of each reported term."""
    return train_on_chunks(model, opt, ds, steps, batch, chunk, rng, grad_clip, device, episodes, grad_norm=True, generator=g)


@torch.no_grad()
def evaluate_dreamer(model: Dreamer, ds: EpisodeDataset, episodes: np.ndarray, chunk: int, device: str, seed: int = 0) -> dict[str, float]:
    """Held-out metrics over every transition of ``episodes`` (consecutive windows, each filtered from an empty memory,
    posterior samples from a fixed generator): the loss terms, the reward MSE, and how the dream's ends (termination
    probability > 0.5) match the real ones."""
    model.eval()
    obs_idx, act_idx, mask = windows(ds, episodes, chunk, None)
    g = torch.Generator(device).manual_seed(seed)
    held_out = HeldOut()
    for i in range(0, len(obs_idx), 64):
        sl = slice(i, i + 64)
        out = model.sequence_loss(*sequence_batch(ds, (obs_idx[sl], act_idx[sl], mask[sl]), device), generator=g, outputs=True)
        pred = (out.pop("termination_prob") > 0.5).cpu().numpy()
        out.pop("reward_pred")
        held_out.add(out, pred, ds.terminated[act_idx[sl]], mask[sl])
    return held_out.metrics()


@torch.no_grad()
def write_model(model: Dreamer, ds: EpisodeDataset, directory: Path, card: dict[str, Any], bank: int, episodes: np.ndarray,
                half: bool = False, starts: str = "first", horizon: int | None = None, seed: int = 0) -> Path:
    """The model as a model directory (replacing an existing one as a whole); its start-state bank holds ``bank``
    filtered states of ``episodes`` (:mod:`trainers.fit.start_bank`: their first observations, or ``starts="anywhere"``),
    and the card's ``dream_env.max_episode_steps`` is ``horizon`` when given."""
    out = copy.deepcopy(model).cpu().eval()
    picks = bank_steps(ds, episodes, bank, starts, np.random.default_rng([seed, 11]))
    start = filtered_states(out, ds, picks)
    out.start_h, out.start_z = start["h"], start["z"]
    card = {**card, "training": {**card.get("training", {}), "start_bank": bank_record(starts, len(picks), horizon)}}
    if horizon:
        card["dream_env"] = {**card.get("dream_env", {}), "max_episode_steps": int(horizon)}
    return save_model_dir(out, directory, card, half=half)


def bank_choice(cfg) -> tuple[str, int | None]:
    """The fit's bank and dream horizon: ``cfg.starts`` (default anywhere) and ``cfg.dream_horizon`` (default
    :data:`~trainers.fit.start_bank.DEFAULT_HORIZON` when starting anywhere; the real env's otherwise)."""
    starts = cfg.starts or "anywhere"
    return starts, cfg.dream_horizon or (DEFAULT_HORIZON if starts == "anywhere" else None)


def _run_updates(cfg, p: dict[str, Any], model: Dreamer, opt, ds: EpisodeDataset, stage: Stage, record: dict[str, Any],
                 train_eps: np.ndarray, val_eps: np.ndarray, ckpt_dir: Path) -> None:
    """Update blocks until ``p["updates"]`` (or ``cfg.rnn_minutes``), checkpointing and logging each block."""
    first, invocation_start = record["epoch"], time.time()
    with TrainingLog(ckpt_dir, "dreamer", resume_from=record.get("updates", 0)) as log:
        while record.get("updates", 0) < p["updates"] and not out_of_time("dreamer", cfg, p, record, first, invocation_start):
            block, done = record["epoch"], record.get("updates", 0)
            t0, n = time.time(), min(UPDATES_PER_CHECKPOINT, p["updates"] - done)
            train = train_dreamer(model, opt, ds, n, p["batch"], p["chunk"], np.random.default_rng([cfg.seed, 5, block]),
                                  torch.Generator(cfg.device).manual_seed(cfg.seed + 13 + block), p["grad_clip"], cfg.device, train_eps)
            val = evaluate_dreamer(model, ds, val_eps, p["chunk"], cfg.device, cfg.seed) if len(val_eps) else {}
            save_block(record, stage, log, n, train, val, t0)
            logger.info(f"dreamer updates {done + n}/{p['updates']}: train loss {train['loss']:.3f}"
                        + (f"  held-out loss {val['loss']:.3f} (reward mse {val['reward_mse']:.4f}, termination acc {val['termination_accuracy']:.4f} "
                           f"recall {val['termination_recall']:.3f}, kl {val['kl']:.2f})" if val else ""))


def fit_dreamer(cfg) -> Path:
    """``gym-dream fit --family dreamer``: fit on ``cfg.data`` and write ``cfg.out``; resumable."""
    start = time.time()
    ds = EpisodeDataset(cfg.data, max_episodes=cfg.max_episodes)
    p = dreamer_hyperparameters(cfg)
    torch.manual_seed(cfg.seed)
    model = dreamer_for(ds.meta, p, bank_size=1).to(cfg.device)
    train_eps, val_eps = ds.split(cfg.val_fraction, cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"], eps=p["eps"])
    ckpt_dir = Path(cfg.checkpoint_dir or f"{cfg.out}.checkpoints")
    with held(ckpt_dir, "fit"):  # one process per fit: a second copy would interleave its checkpoints
        stage = fit_stage(ckpt_dir, "dreamer", ds, cfg, p, ("updates",), model, opt)
        record = stage.resume()
        log_data(ds, train_eps, val_eps)
        _run_updates(cfg, p, model, opt, ds, stage, record, train_eps, val_eps, ckpt_dir)
        heldout = evaluate_dreamer(model, ds, val_eps, p["chunk"], cfg.device, cfg.seed) if len(val_eps) else {}
        card = {
            **data_card(ds, train_eps, val_eps),
            "training": training_record("dreamer", cfg, p, time.time() - start, record, heldout, updates=record.get("updates", 0)),
            "scores": {},
            "uncertainty": heldout_disagreement(model.eval(), ds, val_eps, cfg.device),
            **cfg.extra_card,
        }
        starts, horizon = bank_choice(cfg)
        out = write_model(model, ds, Path(cfg.out), card, bank=cfg.bank_size, episodes=train_eps, half=cfg.half, starts=starts,
                          horizon=horizon, seed=cfg.seed)
        logger.info(f"wrote {out} in {time.time() - start:.0f} s")
        return out
