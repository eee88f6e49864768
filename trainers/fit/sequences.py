"""What the fits share: training windows of sequences, the card's ``env`` and ``data`` fields of a model fitted on a
dataset, and the bookkeeping of the sequence fits' update blocks (RSSM, dreamer)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from trainers.data.dataset import EpisodeDataset

logger = logging.getLogger(__name__)


def windows(ds: EpisodeDataset, episodes: np.ndarray, seq_len: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (obs_idx (W, T+1), act_idx (W, T), mask (W, T)) of training windows.

    With ``rng``: random windows, one per ``seq_len`` training steps, episodes drawn in proportion
    to their length, each starting anywhere in its episode (a window running past the end is
    masked), so an episode's last transitions (deaths, crashes: what the termination head must
    learn) are trained on as often as any other. Without: consecutive windows covering every
    transition once (evaluation).
    """
    lengths = ds.lengths[episodes]
    if rng is not None:
        n = max(1, math.ceil(lengths.sum() / seq_len))
        pick = rng.choice(len(episodes), size=n, p=lengths / lengths.sum())
        ep = episodes[pick]
        start = (rng.random(n) * ds.lengths[ep]).astype(np.int64)
    else:
        ep = np.concatenate([np.full(math.ceil(L / seq_len), e) for e, L in zip(episodes, lengths)])
        start = np.concatenate([np.arange(0, L, seq_len) for L in lengths])
    L = ds.lengths[ep]
    steps = np.arange(seq_len)
    valid = steps[None] < (L - start)[:, None]
    act_idx = ds.act_start[ep][:, None] + np.minimum(start[:, None] + steps[None], L[:, None] - 1)
    obs_steps = np.arange(seq_len + 1)
    obs_idx = ds.obs_start[ep][:, None] + np.minimum(start[:, None] + obs_steps[None], L[:, None])
    return obs_idx, act_idx, valid


def data_card(ds: EpisodeDataset, train_eps: np.ndarray, val_eps: np.ndarray) -> dict[str, Any]:
    """The card's ``env`` and ``data`` fields of a model fitted on ``ds`` (both families)."""
    meta = ds.meta
    return {
        "env": {"id": meta["env_id"], "kwargs": meta.get("env_kwargs", {}), "max_episode_steps": meta.get("max_episode_steps"),
                "action_repeat": meta.get("action_repeat", 1),
                **({"missing": meta["env_missing"]} if meta.get("env_missing") else {})},  # a Minari dataset's env not made here
        "data": {"episodes": len(ds), "steps": ds.steps, "policies": meta.get("policies", []),
                 "train_episodes": int(len(train_eps)), "heldout_episodes": int(len(val_eps)),
                 **({"source": meta["source"]} if meta.get("source") else {})},  # e.g. {"minari": id, ...}
    }


def sequence_batch(ds: EpisodeDataset, idx: tuple[np.ndarray, np.ndarray, np.ndarray], device: str) -> tuple:
    """The tensors of windows ``idx`` (:func:`windows`), as sequence families' ``sequence_loss`` takes them:
    observations (W, T+1, ...), actions, rewards, terminated (W, T) and the float mask (W, T)."""
    import torch

    obs_idx, act_idx, mask = idx
    return (torch.as_tensor(ds.obs[obs_idx], device=device), torch.as_tensor(ds.actions[act_idx], device=device),
            torch.as_tensor(ds.rewards[act_idx], device=device), torch.as_tensor(ds.terminated[act_idx], device=device),
            torch.as_tensor(mask, dtype=torch.float32, device=device))


def train_on_chunks(model, opt, ds: EpisodeDataset, steps: int, batch: int, chunk: int, rng: np.random.Generator, grad_clip: float,
                    device: str, episodes: np.ndarray, grad_norm: bool = False, **loss_kwargs: Any) -> dict[str, float]:
    """``steps`` updates of a sequence family (RSSM, dreamer) on ``batch`` random ``chunk``-step windows of ``episodes``,
    its ``sequence_loss(*batch, **loss_kwargs)`` clipped to ``grad_clip``; returns the mean of each reported term
    (``grad_norm``: the gradient norm before clipping too)."""
    import torch

    sums: dict[str, float] = {}
    model.train()
    for _ in range(steps):
        obs_idx, act_idx, mask = windows(ds, episodes, chunk, rng)
        pick = rng.integers(0, len(obs_idx), size=batch)
        out = model.sequence_loss(*sequence_batch(ds, (obs_idx[pick], act_idx[pick], mask[pick]), device), **loss_kwargs)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if grad_norm:
            out["grad_norm"] = norm
        opt.step()
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
    model.eval()
    return {k: v / max(steps, 1) for k, v in sums.items()}


def training_record(family: str, cfg: Any, p: dict[str, Any], seconds: float, record: dict[str, Any], heldout: dict[str, Any],
                    **extra: Any) -> dict[str, Any]:
    """The card's ``training`` section of a sequence fit: family, preset and sizes, seed, wall and update time, where
    it ran, and the held-out metrics (``extra``: more fields, e.g. the updates made)."""
    import platform

    import torch

    return {"family": family, "preset": cfg.preset, "hyperparameters": p, "seed": cfg.seed, "seconds": round(seconds, 1),
            "update_seconds": round(record.get("seconds", 0.0), 1), **extra, "device": cfg.device, "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "machine": platform.machine(), "heldout": {family: heldout}}


def log_data(ds: EpisodeDataset, train_eps: np.ndarray, val_eps: np.ndarray) -> None:
    """The line that opens a fit's log: the dataset and its split."""
    logger.info(f"data: {len(ds)} episodes, {ds.steps} steps of {ds.meta['env_id']} ({len(train_eps)} train / {len(val_eps)} held-out episodes)")


def out_of_time(label: str, cfg: Any, p: dict[str, Any], record: dict[str, Any], first: int, started: float) -> bool:
    """Whether ``cfg.rnn_minutes`` of this invocation (begun at ``started`` with block ``first``) are spent, said in the
    log; at least one block per invocation, so a resumed run always makes progress."""
    block, done = record["epoch"], record.get("updates", 0)
    if cfg.rnn_minutes is not None and block > first and time.time() - started > 60 * cfg.rnn_minutes:
        logger.info(f"{label} stopped after {done} of {p['updates']} updates (rnn_minutes={cfg.rnn_minutes}); re-run to continue")
        return True
    return False


def save_block(record: dict[str, Any], stage: Any, training_log: Any, n: int, train: dict[str, float], val: dict[str, float],
               t0: float) -> None:
    """An update block of ``n`` updates begun at ``t0``, done: in the record (its history, the seconds), the checkpoint
    (``stage``) and a row of the training log."""
    block, done = record["epoch"], record.get("updates", 0)
    record["epoch"], record["updates"] = block + 1, done + n
    record["history"].append({"epoch": block + 1, "updates": done + n, **{f"train_{k}": v for k, v in train.items()},
                              **{f"val_{k}": v for k, v in val.items()}})
    record["seconds"] = record.get("seconds", 0.0) + time.time() - t0
    stage.save(record)
    training_log.write(done + n, **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items() if k != "transitions"},
                       block_seconds=time.time() - t0)


def fit_stage(ckpt_dir: Any, family: str, ds: EpisodeDataset, cfg: Any, p: dict[str, Any], skip: tuple[str, ...], model: Any,
              opt: Any) -> Any:
    """The checkpoint :class:`~trainers.infra.checkpoints.Stage` of a sequence fit (``<ckpt_dir>/<family>.safetensors``), keyed by
    what makes a run the same run (the data's size, the seed, the split and ``p`` but its ``skip`` entries, which may
    change between invocations), so that a changed fit never resumes another one's weights."""
    import hashlib
    import json

    from trainers.infra.checkpoints import Stage

    ident = {"family": family, "data_episodes": len(ds), "data_steps": ds.steps, "seed": cfg.seed, "val_fraction": cfg.val_fraction,
             **{k: v for k, v in p.items() if k not in skip}}
    return Stage(ckpt_dir / f"{family}.safetensors", hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16],
                 {"model": model}, {"adam": opt})


class HeldOut:
    """The sums of a held-out pass over consecutive windows: each loss term weighted by its batch's transitions, and
    how the predicted episode ends match the real ones."""

    def __init__(self) -> None:
        self.tot: dict[str, float] = {}
        self.n = self.correct = self.hits = self.ends = self.false_ends = 0.0

    def add(self, terms: dict[str, Any], pred: np.ndarray, true: np.ndarray, mask: np.ndarray) -> None:
        """One batch: its loss ``terms`` (means over its transitions), predicted and real ends and the valid ``mask``."""
        n = float(mask.sum())
        self.n += n
        for k, v in terms.items():
            self.tot[k] = self.tot.get(k, 0.0) + float(v) * n
        self.correct += float(((pred == true) & mask).sum())
        self.hits += float((pred & true & mask).sum())
        self.ends += float((true & mask).sum())
        self.false_ends += float((pred & ~true & mask).sum())

    def metrics(self) -> dict[str, float]:
        """Each term's mean per transition; termination accuracy, and (accuracy hides rare deaths) the share of real
        ends the dream would end at and its false alarms; the transitions counted."""
        out = {k: v / max(self.n, 1.0) for k, v in self.tot.items()}
        out["termination_accuracy"] = self.correct / max(self.n, 1.0)
        out["termination_recall"] = self.hits / self.ends if self.ends else float("nan")
        out["termination_false_alarm_rate"] = self.false_ends / max(self.n - self.ends, 1.0)
        out["transitions"] = int(self.n)
        return out
