"""Render a dream to a GIF, and real frames next to the model's open-loop predictions.

    python examples/render_dream.py                      # writes dream.gif and compare.gif
"""

import argparse

import gymnasium as gym
import imageio.v2 as imageio

import gym_dream  # noqa: F401
from trainers.evaluation.video import DreamVideoConfig, write_dream_video

p = argparse.ArgumentParser()
p.add_argument("--model", default="cartpole")
p.add_argument("--steps", type=int, default=100)
p.add_argument("--out", default=".")
args = p.parse_args()

# any Dream-* env renders its decoded dream frame with render_mode="rgb_array"
env = gym.make("Dream-CartPole-v0", model=args.model, tau=1.0, render_mode="rgb_array")
env.reset(seed=0)
frames = [env.render()]
for _ in range(args.steps):
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    frames.append(env.render())
    if terminated or truncated:
        env.reset()
imageio.mimsave(f"{args.out}/dream-bars.gif", frames, duration=33)

# the CLI's renderer draws vector dreams with the real env's own renderer, and can compare with reality
write_dream_video(DreamVideoConfig(model=args.model, out=f"{args.out}/dream.gif", steps=args.steps))
write_dream_video(DreamVideoConfig(model=args.model, out=f"{args.out}/compare.gif", steps=args.steps, compare=True))
print(f"wrote {args.out}/dream-bars.gif, {args.out}/dream.gif, {args.out}/compare.gif")
