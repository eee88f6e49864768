"""Registration of the Dream-* ids (see :mod:`gym_dream.envs.registry`)."""

from gym_dream.envs.registry import register_dream_envs

register_dream_envs()
