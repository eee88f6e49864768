"""Train a stable-baselines3 agent inside a dream, then score it on the real env.

    python examples/sb3_in_dream.py                      # PPO in Dream-CartPole-v0 (shipped model), ~1 min
    python examples/sb3_in_dream.py --algo dqn --timesteps 100000
"""

import argparse

import gymnasium as gym
import numpy as np

import gym_dream
from trainers.agents.sb3 import DEFAULT_HPARAMS, algo_class, make_sb3_env

p = argparse.ArgumentParser()
p.add_argument("--algo", default="ppo")
p.add_argument("--model", default="cartpole", help="model name or directory")
p.add_argument("--timesteps", type=int, default=100_000)
p.add_argument("--episodes", type=int, default=20, help="real episodes to score")
args = p.parse_args()

# 16 dreams stepped as one batched tensor program, seen by SB3 as its VecEnv
env = make_sb3_env("Dream-CartPole-v0", num_envs=16, model=args.model, tau=1.0, device="cpu")
agent = algo_class(args.algo)("MlpPolicy", env, seed=0, **DEFAULT_HPARAMS[args.algo]).learn(args.timesteps)

# the real CartPole, seen through the same model: same observation space as the dream
real = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), args.model)
returns = []
for seed in range(args.episodes):
    obs, _ = real.reset(seed=seed)
    done, total = False, 0.0
    while not done:
        action, _ = agent.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = real.step(action)
        total += reward
        done = terminated or truncated
    returns.append(total)
print(f"{args.algo.upper()} trained only in the dream: real return {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")
