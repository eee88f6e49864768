"""Does a dream that starts anywhere in the real data, with a short horizon, teach an untuned agent more than one that
starts where real episodes start? (issue 49)

Writes a copy of a fitted dreamer model directory whose start bank holds N filtered states drawn from every step of
its training episodes and whose card sets the dream horizon H (what `gym-dream fit --starts anywhere --dream-horizon H`
now writes, trainers/fit/start_bank.py, which replaced this script's loop)::

    python benchmarks/ad_hoc/branch_bank.py MODEL DATA OUT H N
    gym-dream train ppo --model OUT --out runs/ppo-OUT && gym-dream evaluate runs/ppo-OUT/best --model OUT --seed 700000 --episodes 30
"""
import json
import sys

import numpy as np
import torch

from gym_dream.store import resolve_model
from gym_dream.checkpoint import save_model
from trainers.data.dataset import EpisodeDataset

src, data, out, horizon, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(1)
model = resolve_model(src).eval()
card = json.load(open(f"{src}/model.json"))
ds = EpisodeDataset(data)
train_eps, _ = ds.split(0.1, seed=0)
hs, zs = [], []
with torch.no_grad():
    for i in train_eps:
        ep = ds.episode(int(i))
        obs = torch.as_tensor(ep.obs, dtype=torch.float32)
        act = torch.as_tensor(ep.actions)
        s = model.initial_state(0, obs=obs[:1])
        hs.append(s["h"])
        zs.append(s["z"])
        for t in range(len(act) - 1):  # the state before each action (never the state after the last one)
            s = model.observe(s, act[t:t + 1], obs[t + 1:t + 2])
            hs.append(s["h"])
            zs.append(s["z"])
H, Z = torch.cat(hs), torch.cat(zs)
rng = np.random.default_rng(0)
idx = torch.as_tensor(rng.choice(len(H), size=min(n, len(H)), replace=False))
model.start_h, model.start_z = H[idx].clone(), Z[idx].clone()
card["params"]["bank_size"] = int(len(idx))
card["dream_env"] = {"max_episode_steps": horizon}
card.pop("weights", None)
save_model(model, out, card)
print(f"{len(H)} filtered states from {len(train_eps)} episodes; bank {len(idx)}; horizon {horizon} -> {out}")
