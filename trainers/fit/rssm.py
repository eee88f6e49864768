"""Fit PlaNet's RSSM on collected shards (``gym-dream fit --family rssm``), and the pieces the PlaNet loop runs.

The same code fits an RSSM from a finished collection and inside the PlaNet loop: :func:`rssm_for` builds the
model from a dataset's spaces and a preset, :func:`train_rssm` runs ELBO updates on random windows,
:func:`write_model` writes the model directory (its start-state bank: posteriors of real first observations)
and replaces an existing one as a whole. :func:`fit_rssm` checkpoints every ``UPDATES_PER_CHECKPOINT`` updates
(model, optimizer and progress, atomically, as ``fit`` does per epoch) and resumes on re-run; each block's losses
are a row of ``<checkpoint dir>/rssm_log.csv`` (and TensorBoard when installed: :class:`trainers.infra.training_log.TrainingLog`).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gym_dream.models import RSSM
from gym_dream.models.members import disagreement_summary
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict
from trainers.infra.checkpoints import save_model_dir
from trainers.data.dataset import EpisodeDataset
from trainers.infra.folder_lock import held
from trainers.fit.presets import RSSM_PRESETS, preset
from trainers.fit.sequences import data_card, fit_stage, log_data, out_of_time, save_block, sequence_batch, train_on_chunks, training_record, windows
from trainers.infra.training_log import TrainingLog

logger = logging.getLogger(__name__)

UPDATES_PER_CHECKPOINT = 100
#: FitConfig fields an RSSM fit reads, and the preset entries they override
RSSM_FIELDS = {"deter": "deter", "stoch": "stoch", "hidden": "hidden", "lr": "lr", "rnn_batch": "batch", "seq_len": "chunk", "updates": "updates"}


def rssm_hyperparameters(cfg) -> dict[str, Any]:
    """The RSSM preset of a :class:`~trainers.fit.dispatch.FitConfig` (``default`` is the CPU preset) with its fields on top."""
    p = preset(RSSM_PRESETS, "cpu" if cfg.preset == "default" else cfg.preset, "rssm")
    for name, key in RSSM_FIELDS.items():
        if getattr(cfg, name, None) is not None:
            p[key] = getattr(cfg, name)
    p.update(free_nats=cfg.free_nats, overshooting=cfg.overshooting, grad_clip=cfg.grad_clip, members=cfg.members)
    return p


def rssm_for(meta: dict[str, Any], p: dict[str, Any]) -> RSSM:
    """An RSSM for a dataset's spaces and preprocessing (``meta``), sized by preset ``p``."""
    kwargs = {k: p[k] for k in ("deter", "stoch", "hidden", "members") if k in p}
    if "cnn_channels" in p:
        kwargs["cnn_channels"] = tuple(p["cnn_channels"])
    return RSSM(space_from_dict(meta["observation_space"]), space_from_dict(meta["action_space"]),
                Preprocessing.from_dict(meta["preprocessing"]), **kwargs)


def train_rssm(model: RSSM, opt: torch.optim.Optimizer, ds: EpisodeDataset, steps: int, batch: int, chunk: int,
               rng: np.random.Generator, g: torch.Generator, free_nats: float = 3.0, overshooting: int = 0,
               grad_clip: float = 1000.0, device: str = "cpu", episodes: np.ndarray | None = None) -> dict[str, float]:
    """``steps`` ELBO updates on random chunks of ``episodes`` (default all); returns the mean of each loss term."""
    episodes = np.arange(len(ds)) if episodes is None else episodes
    return train_on_chunks(model, opt, ds, steps, batch, chunk, rng, grad_clip, device, episodes, free_nats=free_nats,
                           overshooting=overshooting, generator=g)


@torch.no_grad()
def evaluate_rssm(model: RSSM, ds: EpisodeDataset, episodes: np.ndarray, chunk: int, p: dict[str, Any], device: str, seed: int = 0) -> dict[str, float]:
    """Held-out ELBO terms over every transition of ``episodes`` (consecutive windows, a fixed generator)."""
    model.eval()
    obs_idx, act_idx, mask = windows(ds, episodes, chunk, None)
    g = torch.Generator(device).manual_seed(seed)
    tot: dict[str, float] = {}
    n_total = float(mask.sum())
    for i in range(0, len(obs_idx), 64):
        sl = slice(i, i + 64)
        out = model.sequence_loss(*sequence_batch(ds, (obs_idx[sl], act_idx[sl], mask[sl]), device), free_nats=p["free_nats"], generator=g)
        n = float(mask[sl].sum())
        for k, v in out.items():
            tot[k] = tot.get(k, 0.0) + float(v) * n
    return {**{k: v / max(n_total, 1.0) for k, v in tot.items()}, "transitions": int(n_total)}


@torch.no_grad()
def write_model(model: RSSM, ds: EpisodeDataset, directory: Path, card: dict[str, Any], bank: int = 256,
                episodes: np.ndarray | None = None, half: bool = False) -> Path:
    """The model as a model directory (replacing an existing one as a whole), its start-state bank = posteriors
    of the first observations of ``episodes`` (default: every episode), at most ``bank`` of them."""
    out = copy.deepcopy(model).cpu().eval()
    episodes = np.arange(len(ds)) if episodes is None else episodes
    firsts = torch.as_tensor(ds.obs[ds.obs_start[episodes[:bank]]])
    start = out.initial_state(0, obs=firsts)
    out.start_h, out.start_s = start["h"].clone(), start["s"].clone()
    return save_model_dir(out, directory, card, half=half)


@torch.no_grad()
def heldout_disagreement(model: RSSM, ds: EpisodeDataset, episodes: np.ndarray, device: str, batch: int = 16) -> dict[str, Any]:
    """The card's ``uncertainty`` section: the members and the disagreement ``imagine`` reports over every held-out transition."""
    out: dict[str, Any] = {"members": model.members, "reward_min": float(ds.rewards.min()), "reward_max": float(ds.rewards.max())}
    if model.members == 1 or not len(episodes):
        return out
    obs_idx, act_idx, mask = windows(ds, episodes, int(ds.lengths[episodes].max()), None)
    values = [model.sequence_disagreement(torch.as_tensor(ds.obs[obs_idx[i : i + batch]], device=device),
                                          torch.as_tensor(ds.actions[act_idx[i : i + batch]], device=device)).cpu().numpy()[mask[i : i + batch]]
              for i in range(0, len(obs_idx), batch)]
    out["definition"] = "mean over stoch dims of the members' std (ddof 0) of the prior mean of the next state"
    out["heldout_disagreement"] = disagreement_summary(np.concatenate(values), len(episodes))
    return out


def fit_rssm(cfg) -> Path:
    """``gym-dream fit --family rssm``: fit an RSSM on ``cfg.data`` and write ``cfg.out``; resumable."""

    start = time.time()
    ds = EpisodeDataset(cfg.data, max_episodes=cfg.max_episodes)
    p = rssm_hyperparameters(cfg)
    torch.manual_seed(cfg.seed)
    model = rssm_for(ds.meta, p).to(cfg.device)
    train_eps, val_eps = ds.split(cfg.val_fraction, cfg.seed)
    model.fit_normalizer(torch.as_tensor(np.concatenate([ds.obs[ds.obs_start[e] : ds.obs_start[e] + ds.lengths[e] + 1] for e in train_eps]),
                                         device=cfg.device))
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"], eps=1e-4)
    ckpt_dir = Path(cfg.checkpoint_dir or f"{cfg.out}.checkpoints")
    with held(ckpt_dir, "fit"):  # one process per fit: a second copy would interleave its checkpoints
        stage = fit_stage(ckpt_dir, "rssm", ds, cfg, p, ("updates", "train_steps", "planner"), model, opt)
        record = stage.resume()
        log_data(ds, train_eps, val_eps)
        first, invocation_start = record["epoch"], time.time()
        log = TrainingLog(ckpt_dir, "rssm", resume_from=record.get("updates", 0))  # one row per update block: the losses
        while record.get("updates", 0) < p["updates"] and not out_of_time("RSSM", cfg, p, record, first, invocation_start):
            block, done = record["epoch"], record.get("updates", 0)
            t0, n = time.time(), min(UPDATES_PER_CHECKPOINT, p["updates"] - done)
            train = train_rssm(model, opt, ds, n, p["batch"], p["chunk"], np.random.default_rng([cfg.seed, 3, block]),
                               torch.Generator(cfg.device).manual_seed(cfg.seed + 11 + block), p["free_nats"], p["overshooting"],
                               p["grad_clip"], cfg.device, episodes=train_eps)
            val = evaluate_rssm(model, ds, val_eps, p["chunk"], p, cfg.device, cfg.seed) if len(val_eps) else {}
            save_block(record, stage, log, n, train, val, t0)
            logger.info(f"RSSM updates {done + n}/{p['updates']}: train loss {train['loss']:.3f}" + (f"  held-out loss {val['loss']:.3f}" if val else ""))
        log.close()
        heldout = evaluate_rssm(model, ds, val_eps, p["chunk"], p, cfg.device, cfg.seed) if len(val_eps) else {}
        card = {
            **data_card(ds, train_eps, val_eps),
            "training": training_record("rssm", cfg, p, time.time() - start, record, heldout),
            "scores": {},
            "uncertainty": heldout_disagreement(model.eval(), ds, val_eps, cfg.device),
            **cfg.extra_card,
        }
        out = write_model(model, ds, Path(cfg.out), card, bank=cfg.bank_size, episodes=train_eps, half=cfg.half)
        logger.info(f"wrote {out} in {time.time() - start:.0f} s")
        return out
