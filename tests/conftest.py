import os

import gymnasium as gym
import numpy as np
import pytest

os.environ.setdefault("GYM_DREAM_PROGRESS", "0")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from gym_dream.models import MDNRNN  # noqa: E402
from gym_dream.preprocessing import Preprocessing  # noqa: E402
from gym_dream.spaces import space_from_dict  # noqa: E402


def _init(model, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        model.start_z.copy_(torch.randn(model.start_z.shape, generator=g))
    model.eval().requires_grad_(False)
    return model


@pytest.fixture
def vector_model():
    """A randomly initialised tiny CartPole model (card says CartPole-v1)."""
    env = gym.make("CartPole-v1")
    m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=16, mixtures=3, head_hidden=8, bank_size=8)
    m.card = {"env": {"id": "CartPole-v1"}}
    return _init(m, 0)


@pytest.fixture
def pixel_model():
    """A randomly initialised tiny pixel model with CarRacing-v3's spaces."""
    obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = space_from_dict({"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0})
    m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), z_dim=8, hidden=16, mixtures=2, head_hidden=8, vae_channels=(4, 8, 8, 16), bank_size=4)
    m.card = {"env": {"id": "CarRacing-v3"}}
    return _init(m, 1)


@pytest.fixture
def small_rssm():
    """A small vector RSSM (5-dim observations, 1-dim actions), seeded, in eval mode."""
    import torch

    from gym_dream.models import RSSM

    torch.manual_seed(0)
    return RSSM(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("vector"),
                deter=32, stoch=8, hidden=32).eval()


@pytest.fixture(scope="session")
def cartpole_data(tmp_path_factory):
    from trainers.data.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("data") / "cartpole"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=3000, workers=1, seed=0))
    return out


@pytest.fixture(scope="session")
def tiny_cartpole_model(cartpole_data, tmp_path_factory):
    from trainers.fit.dispatch import FitConfig, fit

    out = tmp_path_factory.mktemp("models") / "cartpole-tiny"
    return fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", bank_size=16))
