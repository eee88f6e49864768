import hashlib

import numpy as np
import pytest

from trainers.collect import CollectConfig, collect
from trainers.data import EpisodeDataset, count_episodes, shard_paths
from trainers.policies import RandomPolicy


class _Interrupt(RandomPolicy):
    """Random policy that raises KeyboardInterrupt (Ctrl-C) after a number of steps."""

    limit = 0

    def __call__(self, obs):
        _Interrupt.limit -= 1
        if _Interrupt.limit < 0:
            raise KeyboardInterrupt
        return super().__call__(obs)


def _hashes(ds):
    return [hashlib.sha256(ds.episode(i).obs.tobytes() + ds.episode(i).actions.tobytes()).hexdigest() for i in range(len(ds))]


def test_interrupted_collection_resumes_without_loss_or_duplicates(tmp_path):
    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=None, episodes=60, workers=2, shard_steps=200, seed=0)
    _Interrupt.limit = 400
    with pytest.raises(KeyboardInterrupt):
        collect(cfg, policy_factory=lambda space, n, seed: _Interrupt(space, n, seed))
    n_before, steps_before = count_episodes(cfg.out)
    assert 0 < n_before < 60  # finished episodes were flushed on the interruption
    before = EpisodeDataset(cfg.out)
    kept = _hashes(before)
    summary = collect(cfg)
    after = EpisodeDataset(cfg.out)
    assert summary["episodes"] == len(after) >= 60
    assert _hashes(after)[: len(kept)] == kept  # nothing lost or rewritten
    assert len(set(_hashes(after))) == len(after)  # nothing duplicated
    np.testing.assert_array_equal(after.ids, np.arange(len(after)))
    # a finished dataset is left alone
    assert collect(cfg)["new_episodes"] == 0


def test_step_budget_is_never_exceeded_and_episodes_are_consistent(tmp_path):
    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=1000, workers=2, seed=1)
    collect(cfg)
    ds = EpisodeDataset(cfg.out)
    assert ds.steps == 1000
    assert ds.obs.dtype == np.float32 and ds.obs.shape == (ds.steps + len(ds), 4)
    ends = ds.terminated | ds.truncated
    last = ds.act_start + ds.lengths - 1
    assert ends[last].all() and ends.sum() == len(ds)  # exactly one ending per episode, at its end
    assert not list(tmp_path.glob("d/.*tmp"))  # no torn temp files


def test_dataset_of_another_env_is_refused(tmp_path):
    collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=50, workers=1))
    with pytest.raises(ValueError, match="already holds a dataset of CartPole-v1"):
        collect(CollectConfig(env_id="Acrobot-v1", out=str(tmp_path / "d"), steps=50, workers=1))


def test_carracing_frames_are_64x64_uint8_with_brownian_policy(tmp_path):
    pytest.importorskip("Box2D")
    collect(CollectConfig(env_id="CarRacing-v3", out=str(tmp_path / "c"), steps=60, workers=1, max_episode_steps=30))
    ds = EpisodeDataset(tmp_path / "c")
    assert ds.obs.shape[1:] == (64, 64, 3) and ds.obs.dtype == np.uint8
    assert ds.meta["policies"] == ["brownian"]
    # brownian actions are smooth: consecutive steering changes are small
    assert np.abs(np.diff(ds.actions[:29, 0])).max() < 0.5
