"""The start-state bank of a sequence model: the model states its dream episodes begin from.

Two ways to fill it from the real training episodes, both by filtering real observations through the model
(``initial_state(obs=...)``, then ``observe`` step by step: the very states a dream-trained agent meets on the real side,
where :class:`gym_dream.DreamObservation` filters the same way):

- ``"first"``: the states of the episodes' first observations. A dream episode starts where a real one does and runs
  the real env's horizon.
- ``"anywhere"`` (the default of the ``dreamer`` fit): states drawn uniformly from every step of the training episodes
  (the state before each recorded action), with a short dream horizon (:data:`DEFAULT_HORIZON`, the card's
  ``dream_env.max_episode_steps``). This is MBPO's branched rollout (Janner et al. 2019) as an environment: an agent
  learns from states spread over all the data, and no imagined trajectory runs long enough to drift far from what the
  model saw. The agent's own value function carries the return past the horizon (the dream *truncates*, which SB3
  bootstraps). Measured on LunarLander-v3 (the same model, SB3 PPO with its defaults, 100k dream steps, real return
  on 30 episodes that no run selected on): first-observation starts with the 1,000-step horizon -104.7 ± 79.8;
  anywhere-starts with a 64-step horizon 59.8 ± 130.2 (results/any_env.md has the table and its commands).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gym_dream.models.base import State, WorldModel
from trainers.data.dataset import EpisodeDataset

#: how the bank is filled: ``"anywhere"`` or ``"first"``
STARTS = ("anywhere", "first")
#: the dream horizon written to the card of a model whose bank starts anywhere
DEFAULT_HORIZON = 64
#: episodes filtered together (one batch through the model)
_BATCH = 128
#: at most about this many bytes of observations in one batch (pixel episodes are large)
_BYTES = 256 * 2**20


def bank_steps(ds: EpisodeDataset, episodes: np.ndarray, rows: int, starts: str, rng: np.random.Generator) -> np.ndarray:
    """(rows, 2) int64 pairs (episode, step) of the states to keep: step 0 of up to ``rows`` episodes for ``"first"``;
    for ``"anywhere"``, ``rows`` steps drawn without replacement from every step before an action of ``episodes``."""
    if starts not in STARTS:
        raise ValueError(f"starts must be one of {STARTS}, got {starts!r}.")
    episodes = np.asarray(episodes, dtype=np.int64)
    if starts == "first":
        chosen = episodes[:rows]
        return np.stack([chosen, np.zeros_like(chosen)], axis=1)
    lengths = ds.lengths[episodes].astype(np.int64)
    total = int(lengths.sum())
    flat = np.sort(rng.choice(total, size=min(rows, total), replace=False))
    which = np.searchsorted(np.cumsum(lengths), flat, side="right")
    step = flat - np.concatenate([[0], np.cumsum(lengths)[:-1]])[which]
    return np.stack([episodes[which], step], axis=1)


@torch.no_grad()
def filtered_states(model: WorldModel, ds: EpisodeDataset, picks: np.ndarray) -> State:
    """The model's filtered states at ``picks`` ((N, 2) pairs (episode, step) from :func:`bank_steps`), in that order:
    each episode's observations folded in from its first one, batched over episodes."""
    model = model.eval()
    device = next(model.parameters()).device
    out: dict[str, list[torch.Tensor]] = {}
    order: list[np.ndarray] = []
    episodes = np.unique(picks[:, 0])
    per_episode = ds.obs[:1].nbytes * (int(picks[:, 1].max()) + 2)
    batch = int(np.clip(_BYTES // per_episode, 1, _BATCH))
    for lo in range(0, len(episodes), batch):
        chunk = episodes[lo : lo + batch]
        mine = np.flatnonzero(np.isin(picks[:, 0], chunk))
        row_of = {e: i for i, e in enumerate(chunk)}
        b = np.array([row_of[e] for e in picks[mine, 0]])
        t = picks[mine, 1]
        horizon = int(t.max())
        steps = np.minimum(np.arange(horizon + 1)[None], ds.lengths[chunk][:, None])  # (B, T+1), clipped to each episode
        obs = torch.as_tensor(ds.obs[ds.obs_start[chunk][:, None] + steps], device=device)
        acts = torch.as_tensor(ds.actions[ds.act_start[chunk][:, None] + np.minimum(steps, ds.lengths[chunk][:, None] - 1)],
                               device=device)
        state = model.initial_state(0, obs=obs[:, 0])
        kept: list[tuple[np.ndarray, State]] = []
        for k in range(horizon + 1):
            if k:
                state = model.observe(state, acts[:, k - 1], obs[:, k])
            at = np.flatnonzero(t == k)
            if at.size:
                kept.append((at, {key: v[torch.as_tensor(b[at], device=v.device)] for key, v in state.items()}))
        for at, s in kept:
            order.append(mine[at])
            for key, v in s.items():
                out.setdefault(key, []).append(v)
    index = torch.as_tensor(np.argsort(np.concatenate(order)))
    return {key: torch.cat(vs)[index].clone() for key, vs in out.items()}


def bank_record(starts: str, rows: int, horizon: int | None) -> dict[str, Any]:
    """What the card's ``training.start_bank`` says of the bank."""
    return {"starts": starts, "rows": int(rows), **({"horizon": int(horizon)} if horizon else {})}
