"""gym-dream's dreams without torch: exported world models (``gym-dream export MODEL --runtime onnx``) stepped by
onnxruntime + numpy as ordinary Gymnasium environments.

``import gym_dream_onnx`` registers the ``Dream-*`` id of every installed exported package, so
``gym.make(id)`` and ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` work as they do with
gym-dream's torch runtime. Dependencies: numpy, onnxruntime, gymnasium; never torch.
"""

from gym_dream_onnx.dream import DreamFormatError, OnnxDream
from gym_dream_onnx.env import OnnxDreamEnv
from gym_dream_onnx.registry import available_dreams, dream_conflicts, register_onnx_envs
from gym_dream_onnx.vector_env import OnnxDreamVectorEnv

__version__ = "0.1.0"
__all__ = ["DreamFormatError", "OnnxDream", "OnnxDreamEnv", "OnnxDreamVectorEnv", "available_dreams", "dream_conflicts",
           "register_onnx_envs"]

register_onnx_envs()
