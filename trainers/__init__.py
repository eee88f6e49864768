"""Everything that produces models and agents: collection, fitting, CMA-ES, SB3 in dreams, evaluation, CLI.

Needs the ``train`` extra (``pip install "gym-dream[train]"``). ``gym_dream`` never imports this package.
"""
