"""A fourth world-model family, written here in a few lines, fitted, dreamed and saved through the public protocol:
adding a family needs its module, ``register_family`` and ``register_fitter``, and no edit of the other fitters."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

import gym_dream
from gym_dream.models import FAMILIES, Transition, WorldModel, register_family
from gym_dream.models.base import tau_column
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict


class Linear(WorldModel):
    """x' = x + W[x, a] + tau * sigma * eps; reward and end logit linear in [x, a]."""

    family = "linear-test"

    def __init__(self, observation_space, action_space, preprocessing, bank_size=1):
        super().__init__(observation_space, action_space, preprocessing)
        self.d = int(np.prod(observation_space.shape))
        self.net = nn.Linear(self.d + self.action_dim, self.d + 2)
        self.log_std = nn.Parameter(torch.zeros(self.d))
        self.register_buffer("bank", torch.zeros(bank_size, self.d))

    def hyperparameters(self):
        return {"bank_size": int(self.bank.shape[0])}

    @property
    def feature_dim(self):
        return self.d

    def _out(self, x, action):
        return self.net(torch.cat([x, self.encode_action(action)], -1))

    def initial_state(self, batch, generator=None, obs=None):
        if obs is not None:
            return {"x": obs.float().reshape(obs.shape[0], -1)}
        return {"x": self.bank[torch.randint(self.bank.shape[0], (batch,), generator=generator)].clone()}

    def observe(self, state, action, obs):
        return {"x": obs.float().reshape(obs.shape[0], -1)}

    def imagine(self, state, action, tau, generator=None, member=None):
        out = self._out(state["x"], action)
        eps = torch.randn(state["x"].shape, generator=generator)
        x = state["x"] + out[:, : self.d] + tau_column(tau) * self.log_std.exp() * eps
        p_end = torch.sigmoid(out[:, -1])
        zero = torch.zeros_like(p_end)
        return Transition({"x": x}, out[:, self.d], p_end > 0.5, p_end, zero, zero.clone())

    def features(self, state):
        return state["x"]

    def decode(self, state):
        return state["x"]

    def sequence_loss(self, x, actions, x_next, rewards, terminated):
        out = self._out(x, actions)
        z = (x_next - x - out[:, : self.d]) / self.log_std.exp()
        nll = (0.5 * z**2 + self.log_std).sum(-1).mean()
        loss = nll + ((out[:, self.d] - rewards) ** 2).mean()
        loss = loss + nn.functional.binary_cross_entropy_with_logits(out[:, -1], terminated.float())
        return {"loss": loss}


def fit_linear(cfg):
    """The family's fitter: every transition of the dataset, full-batch Adam, then a model directory."""
    from trainers.infra.checkpoints import save_model_dir
    from trainers.data.dataset import EpisodeDataset
    from trainers.fit.sequences import data_card

    ds = EpisodeDataset(cfg.data)
    obs = torch.as_tensor(ds.obs, dtype=torch.float32)
    nxt = np.concatenate([np.arange(s + 1, s + 1 + n) for s, n in zip(ds.obs_start, ds.lengths)])
    batch = (obs[nxt - 1], torch.as_tensor(ds.actions), obs[nxt], torch.as_tensor(ds.rewards), torch.as_tensor(ds.terminated))
    torch.manual_seed(cfg.seed)
    model = Linear(space_from_dict(ds.meta["observation_space"]), space_from_dict(ds.meta["action_space"]),
                   Preprocessing.from_dict(ds.meta["preprocessing"]), bank_size=cfg.bank_size)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(300):
        opt.zero_grad()
        model.sequence_loss(*batch)["loss"].backward()
        opt.step()
    model.bank.copy_(obs[ds.obs_start[: cfg.bank_size]])
    train, val = ds.split(cfg.val_fraction, cfg.seed)
    return save_model_dir(model.eval(), cfg.out, data_card(ds, train, val))


@pytest.fixture
def linear_family():
    from trainers.fit.dispatch import FITTERS, register_fitter

    register_family(Linear)
    register_fitter(Linear.family, fit_linear, {"default": {}})
    yield
    FAMILIES.pop(Linear.family)
    FITTERS.pop(Linear.family)


def test_a_new_family_fits_dreams_and_saves_without_editing_the_others(linear_family, cartpole_data, tmp_path):
    from trainers.cli.commands import main

    out = tmp_path / "linear"
    assert main(["fit", str(cartpole_data), "--out", str(out), "--family", Linear.family, "--bank-size", "8"]) == 0
    model = gym_dream.resolve_model(str(out))  # loaded back from safetensors + card, by the family the card names
    assert isinstance(model, Linear) and model.card["family"] == Linear.family and model.card["env"]["id"] == "CartPole-v1"
    env = gym.make("Dream-CartPole-v0", model=str(out), tau=1.0)  # its dream, as any family's
    check_env(env.unwrapped, skip_render_check=True)
    a, b = gym.make("Dream-Model-v0", model=str(out)), gym.make("Dream-Model-v0", model=str(out))
    ra = [a.reset(seed=5)[0], *(a.step(t % 2)[0] for t in range(5))]
    rb = [b.reset(seed=5)[0], *(b.step(t % 2)[0] for t in range(5))]
    np.testing.assert_array_equal(np.stack(ra), np.stack(rb))  # same seed, same dream
    # it learned CartPole's reward (+1 a step) from the data
    assert abs(model.imagine(model.initial_state(4), torch.tensor([0, 1, 0, 1]), 1.0).reward.mean().item() - 1.0) < 0.2


def test_a_family_must_name_itself_and_cannot_take_a_name():
    class Nameless(Linear):
        family = ""

    class Impostor(Linear):
        family = "rssm"

    with pytest.raises(ValueError, match="family"):
        register_family(Nameless)
    with pytest.raises(ValueError, match="taken"):
        register_family(Impostor)
    with pytest.raises(TypeError, match="abstract"):
        type("Half", (WorldModel,), {"family": "half"})(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), Preprocessing("vector"))
