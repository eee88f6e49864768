"""The RSSM's fast training loss (the default) against the loss as first written (``reference=True``)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from gym_dream.models import RSSM
from gym_dream.models.rssm import ConvDecoder
from gym_dream.preprocessing import Preprocessing


def _batch(model: RSSM, b=3, t=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    if model.pixels:
        obs = torch.randint(0, 256, (b, t + 1, 64, 64, 3), dtype=torch.uint8, generator=g)
    else:
        obs = torch.randn(b, t + 1, model.obs_dim, generator=g)
    if model.action_space.shape:
        actions = torch.rand(b, t, *model.action_space.shape, generator=g) * 2 - 1
    else:
        actions = torch.randint(0, int(model.action_space.n), (b, t), generator=g)
    rewards = torch.randn(b, t, generator=g)
    terminated = torch.zeros(b, t, dtype=torch.bool)
    terminated[1, 4] = True
    mask = torch.ones(b, t)
    mask[1, 5:] = 0.0  # an episode that ends inside the window
    return obs, actions, rewards, terminated, mask


def _models():
    torch.manual_seed(0)
    pixels = RSSM(gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
                  Preprocessing("image", size=(64, 64)), deter=16, stoch=4, hidden=16, cnn_channels=(4, 8, 8, 16))
    env = gym.make("CartPole-v1")
    vector = RSSM(env.observation_space, env.action_space, Preprocessing("vector"), deter=16, stoch=4, hidden=16)
    return {"pixels": pixels, "vector": vector}


@pytest.mark.parametrize("kind", ["pixels", "vector"])
@pytest.mark.parametrize("overshooting", [0, 3])
def test_fast_loss_and_gradients_match_the_reference(kind, overshooting):
    model = _models()[kind]
    batch = _batch(model)
    results = []
    for reference in (True, False):
        model.zero_grad(set_to_none=True)
        out = model.sequence_loss(*batch, overshooting=overshooting, generator=torch.Generator().manual_seed(5), reference=reference)
        out["loss"].backward()
        results.append(({k: float(v.detach()) for k, v in out.items()}, [p.grad.clone() for p in model.parameters()]))
    (ref, ref_grads), (fast, fast_grads) = results
    assert ref.keys() == fast.keys()
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-5), k
    for a, b in zip(ref_grads, fast_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_fast_decoder_is_the_reference_decoder_at_planets_widths():
    torch.manual_seed(0)
    dec = ConvDecoder(230, (32, 64, 128, 256))
    f = torch.randn(5, 230)
    fast, ref = dec(f), dec.reference_forward(f)
    assert fast.shape == ref.shape == (5, 3, 64, 64) and fast.is_contiguous()
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dec(f.reshape(1, 5, 230)), ref.reshape(1, 5, 3, 64, 64), rtol=1e-5, atol=1e-5)  # leading dims kept
