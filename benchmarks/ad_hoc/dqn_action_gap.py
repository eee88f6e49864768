"""How much a DQN's Q-values tell its actions apart, on dream states: the action gap.

Steps ``--envs`` dreams for ``--steps`` steps under uniform random actions (seed ``--seed``), then reports the agent's
mean Q per action, the spread of Q over states, the spread of the advantages (Q minus the state's mean Q) and how often
each action is the greedy one. A DQN that holds one action everywhere shows advantages a hundredth of Q's spread.

    python benchmarks/ad_hoc/dqn_action_gap.py runs/dqn-screen/n8/agent.zip --dream-id Dream-DoomTakeCover-v0 --tau 1.7
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main() -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    import gym_dream  # noqa: F401

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("agent", help="a DQN's SB3 .zip (cloudpickle: only your own runs)")
    p.add_argument("--dream-id", required=True)
    p.add_argument("--tau", type=float, default=None)
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = DQN.load(a.agent, device="cpu")
    env = gym.make_vec(a.dream_id, num_envs=a.envs, vectorization_mode="vector_entry_point", tau=a.tau)
    env.reset(seed=a.seed)
    rng = np.random.default_rng(a.seed)
    states = []
    for _ in range(a.steps):
        obs, *_ = env.step(rng.integers(0, env.single_action_space.n, size=a.envs))
        states.append(obs)
    states = np.concatenate(states)
    with torch.no_grad():
        q = agent.q_net(torch.as_tensor(states)).numpy()
    adv = q - q.mean(axis=1, keepdims=True)
    greedy = np.bincount(q.argmax(axis=1), minlength=q.shape[1]) / len(q)
    print(f"{len(q)} dream states; Q mean per action {np.round(q.mean(0), 2)}, std over states {np.round(q.std(0), 2)}")
    print(f"advantage std per action {np.round(adv.std(0), 3)}; greedy share per action {np.round(greedy, 3)}")


if __name__ == "__main__":
    main()
