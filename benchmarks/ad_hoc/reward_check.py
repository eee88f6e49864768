"""Where does a model's reward head miss? Its one-step reward predictions (teacher-forced) on real episodes.

    python benchmarks/ad_hoc/reward_check.py runs/carracing/round-5/model runs/carracing/data --from-episode 213

The held-out reward MSE of a fit is one number; a dream's controller cares WHICH steps it misses. This
splits the squared error into the large penalties (reward below ``--penalty``, e.g. CarRacing's -100 for
leaving the playfield) and every other step, lists what the model predicted at each penalty, and the worst
misses elsewhere. ``--from-episode K`` keeps episodes K.. of the dataset (e.g. a collection round the model
never saw).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


import gym_dream
from trainers.data.dataset import shard_paths


@torch.no_grad()
def episode_errors(model, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted rewards and squared errors over one episode: obs (T+1, ...) as stored, actions and rewards (T, ...)."""
    mu, _ = model.vision.encode(torch.as_tensor(obs))
    z = mu.float()[None]
    a = model.encode_action(torch.as_tensor(actions))[None]
    hs, _ = model.rnn(torch.cat([z[:, :-1], a.to(z.dtype)], -1))
    pred, _ = model.heads(z[:, 1:], hs)
    pred = pred[0].float().numpy()
    return pred, (pred - rewards) ** 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory or name")
    p.add_argument("data", help="dataset folder (gym-dream collect)")
    p.add_argument("--from-episode", type=int, default=0, help="only episodes with this index or later")
    p.add_argument("--penalty", type=float, default=-50.0, help="rewards below this count as penalties")
    p.add_argument("--out", default=None, help="also write the numbers as JSON here")
    a = p.parse_args()
    torch.set_num_threads(1)
    model = gym_dream.resolve_model(a.model).float().eval()
    sq_pen, sq_other, penalties, worst = [], [], [], []
    episodes = 0
    for path in shard_paths(a.data):
        with np.load(path) as f:
            ids, lengths, obs, actions, rewards = f["ids"], f["lengths"], f["obs"], f["actions"], f["rewards"]
        o = a0 = 0
        for i, n in zip(ids, lengths):
            if i >= a.from_episode:
                r = rewards[a0 : a0 + n]
                pred, e2 = episode_errors(model, obs[o : o + n + 1], actions[a0 : a0 + n], r)
                pen = r < a.penalty
                sq_pen.append(e2[pen])
                sq_other.append(e2[~pen])
                penalties += [{"episode": int(i), "step": int(t), "reward": float(r[t]), "predicted": float(pred[t])} for t in np.flatnonzero(pen)]
                if (~pen).any():
                    t = int(np.flatnonzero(~pen)[e2[~pen].argmax()])
                    worst.append({"episode": int(i), "step": t, "reward": float(r[t]), "predicted": float(pred[t]), "squared_error": float(e2[t])})
                episodes += 1
            o, a0 = o + n + 1, a0 + n
    if not episodes:
        raise SystemExit(f"No episodes from index {a.from_episode} in {a.data}.")
    sp, so = np.concatenate(sq_pen), np.concatenate(sq_other)
    n = len(sp) + len(so)
    out = {"model": a.model, "data": a.data, "from_episode": a.from_episode, "episodes": episodes, "steps": n,
           "reward_mse": float((sp.sum() + so.sum()) / n), "mse_from_penalties": float(sp.sum() / n), "mse_from_other_steps": float(so.sum() / n),
           "penalties": penalties, "other_steps_with_squared_error_over": {str(k): int((so > k).sum()) for k in (25, 100)},
           "worst_other_steps": sorted(worst, key=lambda w: -w["squared_error"])[:5]}
    print(json.dumps(out, indent=2))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
