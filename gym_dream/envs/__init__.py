"""Registration of the Dream-* ids (plain-data kwargs only, so ``import gym_dream`` stays cheap)."""

from gymnasium.envs.registration import register

_DREAM = "gym_dream.envs.dream_env:DreamEnv"
_DREAM_VEC = "gym_dream.envs.dream_vector_env:DreamVectorEnv"

register(
    id="Dream-CartPole-v0",
    entry_point=_DREAM,
    vector_entry_point=_DREAM_VEC,
    max_episode_steps=500,
    kwargs={"default_model": "cartpole", "real_env_id": "CartPole-v1"},
)

register(
    id="Dream-CarRacing-v0",
    entry_point=_DREAM,
    vector_entry_point=_DREAM_VEC,
    max_episode_steps=1000,
    kwargs={"default_model": "carracing", "real_env_id": "CarRacing-v3"},
)

register(
    id="Dream-DoomTakeCover-v0",
    entry_point=_DREAM,
    vector_entry_point=_DREAM_VEC,
    max_episode_steps=2100,
    kwargs={"default_model": "doom-takecover", "real_env_id": "VizdoomTakeCover-v1"},
)

register(
    id="Dream-CartpoleSwingup-v0",
    entry_point=_DREAM,
    vector_entry_point=_DREAM_VEC,
    max_episode_steps=125,  # 1000 control steps at PlaNet's action repeat of 8
    kwargs={"default_model": "dmc-cartpole-swingup", "real_env_id": "dm_control/cartpole-swingup-v0"},
)
