"""Agents trained in a dream or on the real env: CMA-ES controllers, stable-baselines3 agents, ensembles, and
:func:`~trainers.agents.stored_agent.load_agent` for any stored one."""
