"""World Models' recipe: a linear controller on [z, h], evolved with CMA-ES entirely in the dream.

    python examples/cmaes_controller.py                  # ~1 min on 2 CPU cores with the shipped CartPole model
"""

import argparse

from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import evaluate, markdown_table

p = argparse.ArgumentParser()
p.add_argument("--model", default="cartpole")
p.add_argument("--out", default="runs/example-cmaes")
p.add_argument("--generations", type=int, default=15)
p.add_argument("--popsize", type=int, default=64)
p.add_argument("--rollouts", type=int, default=16)
p.add_argument("--episodes", type=int, default=20)
args = p.parse_args()

# each generation: popsize x rollouts dreams as ONE DreamVectorEnv batch; re-running resumes
result = train_cmaes(CMAESConfig(model=args.model, out=args.out, generations=args.generations, popsize=args.popsize, rollouts=args.rollouts))
controller = LinearController.load(f"{args.out}/best")
print(markdown_table([evaluate(controller, "Dream-CartPole-v0", args.model, taus=(1.0,), episodes=args.episodes, name="CMA-ES linear")]))
