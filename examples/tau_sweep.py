"""The temperature lesson: train at several tau, score each in its dream and on the real env.

    python examples/tau_sweep.py --taus 0.5 1.0 1.5
"""

import argparse

from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import evaluate, markdown_table

p = argparse.ArgumentParser()
p.add_argument("--model", default="cartpole")
p.add_argument("--taus", type=float, nargs="+", default=[0.5, 1.0, 1.5])
p.add_argument("--generations", type=int, default=10)
p.add_argument("--popsize", type=int, default=32)
p.add_argument("--rollouts", type=int, default=8)
p.add_argument("--episodes", type=int, default=20)
args = p.parse_args()

rows = []
for tau in args.taus:
    out = f"runs/example-tau{tau}"
    train_cmaes(CMAESConfig(model=args.model, out=out, tau=tau, generations=args.generations, popsize=args.popsize, rollouts=args.rollouts))
    rows.append(evaluate(LinearController.load(f"{out}/best"), "Dream-CartPole-v0", args.model, taus=(tau,), episodes=args.episodes, name=f"trained at tau={tau}"))
print(markdown_table(rows))
