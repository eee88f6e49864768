"""What both fits (MDN-RNN and RSSM) read from a dataset: training windows of sequences, and the card's
``env`` and ``data`` fields of a model fitted on it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainers.data import EpisodeDataset


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
