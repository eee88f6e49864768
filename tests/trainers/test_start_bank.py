"""The start-state bank: filtered real states from anywhere in the episodes (or their first observations), batched
filtering equal to filtering each episode alone."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from gym_dream.models.dreamer import Dreamer
from gym_dream.preprocessing import Preprocessing
from trainers.data.dataset import EpisodeDataset
from trainers.fit.start_bank import bank_steps, filtered_states


@pytest.fixture(scope="module")
def model():
    env = gym.make("CartPole-v1")
    torch.manual_seed(0)
    m = Dreamer(env.observation_space, env.action_space, Preprocessing("vector"), bank_size=4, deter=16, stoch=4, classes=5,
                hidden=16, units=16, layers=1)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return m.eval().requires_grad_(False)


def _one_by_one(model, ds, episode, step):
    ep = ds.episode(int(episode))
    obs, act = torch.as_tensor(ep.obs), torch.as_tensor(ep.actions)
    s = model.initial_state(0, obs=obs[:1])
    for t in range(step):
        s = model.observe(s, act[t : t + 1], obs[t + 1 : t + 2])
    return s


def test_anywhere_draws_distinct_steps_before_an_action_of_the_given_episodes(cartpole_data):
    ds = EpisodeDataset(cartpole_data)
    episodes = np.arange(5, 40)
    picks = bank_steps(ds, episodes, 200, "anywhere", np.random.default_rng(0))
    assert picks.shape == (200, 2) and np.isin(picks[:, 0], episodes).all()
    assert (picks[:, 1] >= 0).all() and (picks[:, 1] < ds.lengths[picks[:, 0]]).all()
    assert len({tuple(p) for p in picks}) == 200  # without replacement
    assert (picks[:, 1] > 0).mean() > 0.5  # mostly mid-episode, not only first steps
    everything = bank_steps(ds, episodes, 10**9, "anywhere", np.random.default_rng(0))
    assert len(everything) == ds.lengths[episodes].sum()


def test_first_keeps_step_zero_of_the_first_episodes(cartpole_data):
    ds = EpisodeDataset(cartpole_data)
    picks = bank_steps(ds, np.array([7, 3, 9]), 2, "first", np.random.default_rng(0))
    assert picks.tolist() == [[7, 0], [3, 0]]
    with pytest.raises(ValueError, match="starts must be one of"):
        bank_steps(ds, np.array([1]), 2, "middle", np.random.default_rng(0))


def test_batched_filtering_equals_filtering_each_episode_alone(cartpole_data, model):
    ds = EpisodeDataset(cartpole_data)
    picks = bank_steps(ds, np.arange(0, 30), 40, "anywhere", np.random.default_rng(1))
    picks = picks[np.random.default_rng(2).permutation(len(picks))]  # any order comes back in that order
    bank = filtered_states(model, ds, picks)
    assert bank["h"].shape == (40, model.deter)
    for i in (0, 7, 23, 39):
        alone = _one_by_one(model, ds, *picks[i])
        torch.testing.assert_close(bank["h"][i], alone["h"][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(bank["z"][i], alone["z"][0])


def test_a_dreamer_fit_starts_anywhere_with_a_short_horizon_and_evaluate_scores_real_length_episodes(cartpole_data, tmp_path):
    import json

    from trainers.cli.commands import main
    from trainers.evaluation.evaluate import episode_horizon
    from trainers.fit.start_bank import DEFAULT_HORIZON

    common = ["--family", "dreamer", "--preset", "tiny", "--bank-size", "50", "--threads", "1"]
    assert main(["fit", str(cartpole_data), "--out", str(tmp_path / "any"), *common]) == 0
    card = json.loads((tmp_path / "any" / "model.json").read_text())
    assert card["training"]["start_bank"] == {"starts": "anywhere", "rows": 50, "horizon": DEFAULT_HORIZON}
    assert card["dream_env"]["max_episode_steps"] == DEFAULT_HORIZON
    assert gym.make("Dream-Model-v0", model=str(tmp_path / "any")).spec.max_episode_steps == DEFAULT_HORIZON
    assert episode_horizon(str(tmp_path / "any")) == card["env"]["max_episode_steps"] == 500
    # CartPole is in the catalogue, but Dream-CartPole-v0's horizon (500) is not this model's: the commands use its own dream
    from trainers.data.real_envs import dream_id_for

    assert dream_id_for(None, str(tmp_path / "any")) == "Dream-Model-v0"

    # calibrate compares random play per step with such a dream, over real-length dream episodes
    from trainers.evaluation.calibrate import CalibrateConfig, calibrate_tau, calibration_table

    cal = calibrate_tau(CalibrateConfig(model=str(tmp_path / "any"), taus=(1.0, 3.0), episodes=4, dream_episodes=6))
    assert cal["statistic"] == "return per step" and "return per step" in cal["rule"]
    assert cal["real"]["mean"] == pytest.approx(1.0)  # CartPole: +1 every step, whatever the episode's length
    assert all(0 <= d["mean"] <= 1.5 for d in cal["dream"].values())
    assert "random play (return per step), real: 1.000" in calibration_table(cal)

    assert main(["fit", str(cartpole_data), "--out", str(tmp_path / "first"), *common, "--starts", "first"]) == 0
    first = json.loads((tmp_path / "first" / "model.json").read_text())
    assert first["training"]["start_bank"] == {"starts": "first", "rows": 50} and "dream_env" not in first
    assert episode_horizon(str(tmp_path / "first")) is None
    assert dream_id_for(None, str(tmp_path / "first")) == "Dream-CartPole-v0"
    # an episode start has an empty memory (h = 0); the anywhere bank holds mostly mid-episode states
    any_model, first_model = (gym_dream_model(tmp_path / n) for n in ("any", "first"))
    assert first_model.start_h.abs().sum() == 0
    assert (any_model.start_h.abs().sum(1) > 0).float().mean() > 0.5


def test_a_bad_starts_is_refused_before_any_work(tmp_path):
    from trainers.fit.dispatch import FitConfig

    with pytest.raises(ValueError, match="--starts must be one of anywhere | first"):
        FitConfig(data=str(tmp_path), out=str(tmp_path / "m"), family="dreamer", starts="middle")
    with pytest.raises(ValueError, match="--starts is an option of (the other family|dreamer)"):
        FitConfig(data=str(tmp_path), out=str(tmp_path / "m"), family="rssm", starts="anywhere")


def gym_dream_model(path):
    from gym_dream.store import resolve_model

    return resolve_model(str(path))
