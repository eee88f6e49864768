"""gym_dream: trained world models as ordinary, registered Gymnasium environments.

``import gym_dream`` registers the ``Dream-*`` ids (also reachable as ``gym.make("gym_dream:Dream-...")``).
"""

__version__ = "0.1.0"

from gym_dream import envs  # noqa: E402,F401  (registers the Dream-* ids)
from gym_dream.checkpoint import load_model, save_model  # noqa: E402
from gym_dream.envs.dream_env import DreamEnv  # noqa: E402
from gym_dream.envs.dream_vector_env import DreamVectorEnv  # noqa: E402
from gym_dream.store import available_models, resolve_model  # noqa: E402
from gym_dream import wrappers  # noqa: E402

__all__ = ["DreamEnv", "DreamVectorEnv", "available_models", "load_model", "resolve_model", "save_model", "wrappers", "__version__"]
