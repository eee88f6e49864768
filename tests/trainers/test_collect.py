import hashlib

import gymnasium as gym
import numpy as np
import pytest

from gym_dream.preprocessing import Preprocessing

from trainers.data.collect import CollectConfig, collect
from trainers.data.dataset import EpisodeDataset, count_episodes, shard_paths
from trainers.data.policies import RandomPolicy


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


def test_carracing_frames_are_64x64_uint8_with_the_recipe_policy(tmp_path):
    pytest.importorskip("Box2D")
    collect(CollectConfig(env_id="CarRacing-v3", out=str(tmp_path / "c"), steps=60, workers=1, max_episode_steps=30))
    ds = EpisodeDataset(tmp_path / "c")
    assert ds.obs.shape[1:] == (64, 64, 3) and ds.obs.dtype == np.uint8
    assert ds.meta["policies"] == ["road_noise"]
    # OU gas stays on (no standing still at the start line); gas changes smoothly
    assert ds.actions[:, 1].mean() > 0.05
    assert np.abs(np.diff(ds.actions[:29, 1])).max() < 0.5


def test_ou_policy_reverts_to_its_mean_and_brakes_only_now_and_then():
    from gymnasium import spaces

    from trainers.data.policies import make_policy

    space = spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    pol = make_policy("ou", space, 64, seed=0, mean=[0.0, 0.4, -0.4], sigma=[0.15, 0.05, 0.1], theta=0.1)
    acts = np.stack([pol(None) for _ in range(500)])[100:]
    assert abs(acts[..., 0].mean()) < 0.05 and abs(acts[..., 1].mean() - 0.4) < 0.05
    assert 0.0 < (acts[..., 2] > 0).mean() < 0.15
    assert space.contains(acts[0, 0])
    with pytest.raises(ValueError, match="Box action space"):
        make_policy("ou", spaces.Discrete(2), 1, 0)


def test_road_steering_turns_toward_the_road():
    from trainers.data.policies import road_steering

    frames = np.zeros((2, 96, 96, 3), np.uint8)
    frames[..., 1] = 200  # grass everywhere
    frames[0, 40:62, 60:80] = 105  # road to the right
    frames[1, 40:62, 10:30] = 105  # road to the left
    steer = road_steering(frames)
    assert steer[0] > 0.5 and steer[1] < -0.5
    assert road_steering(np.full((1, 96, 96, 3), [100, 200, 100], np.uint8))[0] == 0.0  # no road in view
    # the collector hands policies the 64x64 model input: the same scenes, resized, steer the same way
    small = Preprocessing("image", size=(64, 64))(frames, batched=True)
    np.testing.assert_allclose(road_steering(small), steer, atol=0.1)


class _DictScreenEnv(gym.Env):
    """A VizDoom-shaped stand-in: Dict observation whose 'screen' is the image, short random episodes."""

    observation_space = gym.spaces.Dict({
        "screen": gym.spaces.Box(0, 255, (24, 32, 3), np.uint8),
        "gamevariables": gym.spaces.Box(-1e9, 1e9, (1,), np.float32),
    })
    action_space = gym.spaces.Discrete(3)

    def _obs(self):
        return {"screen": self.np_random.integers(0, 256, (24, 32, 3), dtype=np.uint8), "gamevariables": np.zeros(1, np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, bool(self.np_random.random() < 0.1), False, {}


@pytest.mark.parametrize("workers", [1, 2])
def test_dict_observations_are_collected_through_the_recipe_key(tmp_path, monkeypatch, workers):
    from trainers.data.real_envs import REAL_ENVS, RealEnv

    env_id = "GymDreamTest/DictScreen-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_DictScreenEnv, max_episode_steps=50)
    monkeypatch.setitem(REAL_ENVS, env_id, RealEnv(env_id, Preprocessing("image", key="screen", size=(16, 16))))
    collect(CollectConfig(env_id=env_id, out=str(tmp_path / "d"), episodes=6, steps=None, workers=workers))
    ds = EpisodeDataset(tmp_path / "d")
    assert len(ds) >= 6 and ds.obs.shape[1:] == (16, 16, 3)
    assert ds.meta["observation_space"]["shape"] == [24, 32, 3]  # the model sees the screen, not the dict
    assert ds.obs.shape[0] == ds.steps + len(ds)  # every episode keeps its final frame


def test_sticky_policy_holds_each_random_action_for_up_to_max_hold_steps():
    from trainers.data.policies import make_policy

    def runs(column):
        changes = np.flatnonzero(np.any(column[1:] != column[:-1], axis=tuple(range(1, column.ndim))))
        return np.diff(np.concatenate([[-1], changes, [len(column) - 1]]))

    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    p = make_policy("sticky", box, 3, seed=0, max_hold=6)
    acts = np.stack([p(None) for _ in range(600)])  # (T, envs, 2); a fresh Box draw never repeats the last one
    lengths = np.concatenate([runs(acts[:, i]) for i in range(3)])
    assert lengths.max() <= 6 and lengths.mean() > 2.5  # held, never longer than max_hold
    assert np.all((acts >= -1) & (acts <= 1))
    p.reset(1)  # a new episode in env 1: its next action is a fresh draw, held for 1..max_hold steps
    before = p.actions.copy()
    after = p(None)
    assert np.all(after[1] != before[1]) and 0 <= p.left[1] < 6
    d = make_policy("sticky", gym.spaces.Discrete(3), 4, seed=1, max_hold=10)
    acts = np.stack([d(None) for _ in range(500)])
    assert set(np.unique(acts)) == {0, 1, 2}
    assert np.mean([runs(acts[:, i]).mean() for i in range(4)]) > 3.0  # iid actions would give about 1.5
    with pytest.raises(ValueError, match="max_hold"):
        make_policy("sticky", box, 1, seed=0, max_hold=0)


def _drive_beside_dream_observation(policy, model_dir, seed: int, steps: int) -> list:
    """Step a real CartPole with ``policy`` and, beside it, DreamObservation of the same env under the same actions:
    [(policy's model state, DreamObservation's features, the action taken), ...]."""
    import gym_dream

    wrapped = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), str(model_dir))
    raw = gym.make("CartPole-v1")
    features, _ = wrapped.reset(seed=seed)
    obs, _ = raw.reset(seed=seed)
    seen = []
    for _ in range(steps):
        action = policy(obs[None])[0]
        seen.append((policy.state, features, action))
        features, _, term, trunc, _ = wrapped.step(action)
        obs, *_ = raw.step(action)
        if term or trunc:
            break
    return seen


def test_controller_policy_sees_the_real_env_exactly_as_dream_observation_does(tiny_cartpole_model, tmp_path):
    """Iterative collection: the controller drives through the same features it was trained on."""
    import gym_dream
    from trainers.agents.controller import LinearController
    from trainers.data.policies import AgentPolicy

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    params = np.random.default_rng(0).normal(size=LinearController(m.feature_dim, m.action_space).num_params).astype(np.float32)
    LinearController(m.feature_dim, m.action_space, params).save(tmp_path / "c", {"model": str(tiny_cartpole_model)})
    policy = AgentPolicy(m.action_space, 1, seed=0, controller=str(tmp_path / "c"))
    seen = _drive_beside_dream_observation(policy, tiny_cartpole_model, seed=3, steps=40)
    for state, features, action in seen:
        np.testing.assert_allclose(m.features(state)[0].numpy(), features, atol=1e-5)
        assert action == LinearController(m.feature_dim, m.action_space, params).predict(features)[0]
    assert len(seen) > 4


def test_an_sb3_agent_trained_in_the_dream_drives_the_collection_too(tiny_cartpole_model, tmp_path):
    """Iterative collection for any agent: an SB3 policy stored as data drives the real env through the model's features."""
    from trainers.data.policies import AgentPolicy
    from trainers.agents.sb3 import SB3Config, train_sb3

    train_sb3(SB3Config(algo="ppo", model=str(tiny_cartpole_model), out=str(tmp_path / "ppo"), timesteps=128, num_envs=4,
                        eval_every=64, eval_episodes=2, hparams={"n_steps": 16, "batch_size": 32, "n_epochs": 1}))
    policy = AgentPolicy(gym.make("CartPole-v1").action_space, 1, seed=0, agent=str(tmp_path / "ppo" / "best"))
    seen = _drive_beside_dream_observation(policy, tiny_cartpole_model, seed=4, steps=20)
    assert seen and all(action == policy.agent.predict(features)[0] for _, features, action in seen)


def test_collection_driven_by_a_controller_records_its_actions(tiny_cartpole_model, tmp_path):
    import gym_dream
    from trainers.agents.controller import LinearController

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    always_right = LinearController(m.feature_dim, m.action_space)
    always_right.params[-1] = 1.0  # bias of action 1
    always_right.save(tmp_path / "c")
    out = tmp_path / "data"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=200, workers=2, policy="controller",
                          policy_kwargs={"controller": str(tmp_path / "c"), "model": str(tiny_cartpole_model)}))
    ds = EpisodeDataset(out)
    actions = ds.actions
    assert len(actions) == 200 and (actions == 1).all()
    with pytest.raises(ValueError, match="does not record its world model"):
        collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=50, workers=1, policy="controller",
                              policy_kwargs={"controller": str(tmp_path / "c")}))


def test_an_agent_shipped_next_to_its_model_drives_through_that_model(tiny_cartpole_model, tmp_path):
    """A shipped agent's card records the model directory of the machine it was trained on; collection driven by it
    (by path or by name) uses the model it is shipped with, not that path."""
    import json
    import shutil

    import gym_dream
    from gym_dream.checkpoint import read_card
    from trainers.agents.controller import LinearController
    from trainers.data.policies import AgentPolicy

    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_cartpole_model, shipped)
    m = gym_dream.resolve_model(str(shipped))
    always_right = LinearController(m.feature_dim, m.action_space)
    always_right.params[-1] = 1.0
    always_right.save(shipped / "agents" / "right", {"model": "/elsewhere/runs/model"})  # the training machine's path
    (shipped / "model.json").write_text(json.dumps({**read_card(shipped), "agents": {"right": {"kind": "cmaes"}}}))
    by_path = AgentPolicy(m.action_space, 1, seed=0, agent=str(shipped / "agents" / "right"))
    assert by_path.model.feature_dim == m.feature_dim
    by_name = AgentPolicy(m.action_space, 1, seed=0, agent="right", model=str(shipped))
    assert by_name.agent.params[-1] == 1.0
    with pytest.raises(Exception, match="ships no agent named 'left'"):
        AgentPolicy(m.action_space, 1, seed=0, agent="left", model=str(shipped))


def test_step_budget_holds_across_an_interrupted_resume_with_two_workers(tmp_path):
    """Issue 21 item 10: 20001 of 20000 after a resume with 2 workers, before."""
    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=1001, workers=2, shard_steps=100, seed=3)
    for limit in (151, 97):  # Ctrl-C twice at odd steps, each run leaving episodes in flight
        _Interrupt.limit = limit
        with pytest.raises(KeyboardInterrupt):
            collect(cfg, policy_factory=lambda space, n, seed: _Interrupt(space, n, seed))
        assert count_episodes(cfg.out)[1] < 1001
    collect(cfg)
    ds = EpisodeDataset(cfg.out)
    assert ds.steps == 1001 and count_episodes(cfg.out) == (len(ds), 1001)
    assert len(set(ds.keys.tolist())) == len(ds)  # each episode (seed key) stored once
    np.testing.assert_array_equal(ds.ids, np.arange(len(ds)))


@pytest.mark.parametrize("kw, match", [
    ({"steps": -5}, "--steps must be an integer >= 1"),
    ({"steps": 0}, "--steps must be an integer >= 1"),
    ({"steps": None, "episodes": -1}, "--episodes must be"),
    ({"workers": 0}, "--workers must be"),
    ({"shard_steps": 0}, "--shard-steps must be"),
    ({"env_id": "NoSuchEnv-v0"}, "Cannot make the real env 'NoSuchEnv-v0'"),
    ({"env_id": "Dream-CartPole-v0"}, "is a dream"),
])
def test_bad_collect_arguments_are_refused_and_leave_no_folder(tmp_path, kw, match):
    out = tmp_path / "d"
    with pytest.raises(ValueError, match=match):
        collect(CollectConfig(**{"env_id": "CartPole-v1", "out": str(out), "steps": 100, "workers": 1, **kw}))
    assert not out.exists()


def test_a_truncated_shard_names_the_file_and_the_fix(tmp_path):
    from gym_dream.error import DataFormatError

    out = tmp_path / "d"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=300, workers=1, shard_steps=100))
    shard = shard_paths(out)[1]
    shard.write_bytes(shard.read_bytes()[:200])
    for what in (lambda: EpisodeDataset(out), lambda: collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=600, workers=1))):
        with pytest.raises(DataFormatError, match=f"{shard.name} cannot be read.*truncated or damaged.*mv .*broken.*collect"):
            what()
    shard.rename(shard.with_name(shard.name + ".broken"))  # the fix the message names
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=600, workers=1))
    assert EpisodeDataset(out).steps == 600


def test_stale_and_torn_episode_files_after_a_kill_are_handled(tmp_path):
    """A kill between a compaction's shard write and its episode-file removal leaves duplicates (ignored,
    removed); a power loss can leave a torn episode file (set aside, its episode collected again)."""
    from trainers.data.dataset import write_episode

    out = tmp_path / "d"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), episodes=10, steps=None, workers=1))
    ds = EpisodeDataset(out)
    for i in range(3):  # duplicates of stored episodes, as an interrupted compaction leaves them
        write_episode(out, i, ds.episode(i), int(ds.keys[i]))
    (out / f"episode-{10:08d}.npz").write_bytes(b"PK\x03\x04torn")
    (out / ".episode-00000011.npz.k2j4_x.tmp").write_bytes(b"half a write")  # a kill mid-write
    (out / "notes.tmp").write_text("the user's")
    with pytest.raises(Exception, match="episode-00000010.npz"):
        EpisodeDataset(out)
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), episodes=12, steps=None, workers=1))
    after = EpisodeDataset(out)
    assert len(after) == 12 and len(set(after.keys.tolist())) == 12
    assert (out / "episode-00000010.npz.broken").exists() and not list(out.glob("episode-*.npz"))
    assert not list(out.glob(".*.tmp")) and (out / "notes.tmp").read_text() == "the user's"
    for i in range(10):
        np.testing.assert_array_equal(after.episode(i).obs, ds.episode(i).obs)


def test_two_collectors_never_write_one_dataset(tmp_path):
    """A second collect on a folder another one is writing is refused, naming the fix; a killed holder frees it."""
    import signal
    import subprocess
    import sys
    import time

    from gym_dream.error import DatasetBusy
    from trainers.data.collect import CollectConfig, collect

    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "trainers.cli.commands", "collect", "--env-id", "CartPole-v1", "--out", str(out), "--steps", "10000000",
           "--workers", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not list(out.glob("episode-*.npz")) and time.time() < deadline:
            time.sleep(0.2)
        with pytest.raises(DatasetBusy, match="Another gym-dream collect is writing to"):
            collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=10, workers=1))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    from trainers.data.dataset import count_episodes

    before = count_episodes(out)[1]
    assert collect(CollectConfig(env_id="CartPole-v1", out=str(out), steps=before + 50, workers=1))["steps"] == before + 50


def test_an_agent_drives_the_collection_of_dict_observations_as_dream_observation_sees_them(tmp_path, monkeypatch):
    """The collector hands policies the model's input (the 'screen', resized): an agent's actions are those it takes
    through DreamObservation on the same real episode (a Doom-shaped env; before, the agent policy re-applied the
    recipe's key and failed on every env with dict observations)."""
    import gym_dream
    from trainers.data.collect import episode_seed
    from trainers.agents.controller import LinearController
    from trainers.data.real_envs import REAL_ENVS, RealEnv
    from trainers.fit.dispatch import FitConfig, fit

    env_id = "GymDreamTest/DictScreen-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_DictScreenEnv, max_episode_steps=50)
    monkeypatch.setitem(REAL_ENVS, env_id, RealEnv(env_id, Preprocessing("image", key="screen", size=(64, 64))))
    collect(CollectConfig(env_id=env_id, out=str(tmp_path / "d"), episodes=8, steps=None, workers=1))
    model_dir = fit(FitConfig(data=str(tmp_path / "d"), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", bank_size=4))
    m = gym_dream.resolve_model(str(model_dir))
    params = np.random.default_rng(0).normal(size=LinearController(m.feature_dim, m.action_space).num_params).astype(np.float32)
    controller = LinearController(m.feature_dim, m.action_space, params)
    controller.save(tmp_path / "c", {"model": str(model_dir)})
    collect(CollectConfig(env_id=env_id, out=str(tmp_path / "driven"), episodes=1, steps=None, workers=1, seed=5, policy="agent",
                          policy_kwargs={"agent": str(tmp_path / "c")}))
    recorded = EpisodeDataset(tmp_path / "driven").actions
    wrapped = gym_dream.wrappers.DreamObservation(gym.make(env_id), str(model_dir))
    features, _ = wrapped.reset(seed=episode_seed(5, 0, 0))
    expected = []
    for _ in range(len(recorded)):
        action = int(controller.predict(features)[0])
        expected.append(action)
        features, _, term, trunc, _ = wrapped.step(action)
        if term or trunc:
            break
    assert len(recorded) > 1 and list(recorded) == expected


def test_a_dataset_cut_to_max_episodes_is_the_prefix_of_the_whole(tmp_path):
    # several shards, and a cut in the middle of one: the observations are read straight into one array (two passes)
    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=None, episodes=30, workers=1, shard_steps=150, seed=3)
    collect(cfg)
    whole = EpisodeDataset(cfg.out)
    assert len(list((tmp_path / "d").glob("shard-*.npz"))) > 2
    cut = EpisodeDataset(cfg.out, max_episodes=17)
    assert len(cut) == 17 and cut.obs.shape == (cut.steps + 17, 4)
    assert _hashes(cut) == _hashes(whole)[:17]
    np.testing.assert_array_equal(cut.obs, whole.obs[: len(cut.obs)])


def test_observations_are_read_file_by_file_until_all_are_asked_for(tmp_path):
    # encoding a dataset larger than memory reads each file's frames once and keeps none of them
    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=None, episodes=30, workers=1, shard_steps=150, seed=3)
    collect(cfg)
    lazy, whole = EpisodeDataset(cfg.out, max_episodes=17), EpisodeDataset(cfg.out, max_episodes=17).obs
    chunks = list(lazy.observation_chunks())
    assert len(chunks) > 2 and lazy._obs is None  # several files, none kept
    assert [start for start, _ in chunks] == list(np.cumsum([0] + [len(c) for _, c in chunks[:-1]]))
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), whole)
    assert lazy.observations == len(whole)
    index = np.array([len(whole) - 1, 0, 151, 7, 151])
    np.testing.assert_array_equal(lazy.observations_at(index), whole[index])
    assert lazy._obs is None
    with pytest.raises(IndexError, match=r"\[0, "):
        lazy.observations_at(np.array([len(whole)]))
    assert lazy.frame == ((4,), whole.dtype)  # from the files' headers: one frame's shape and dtype
    assert lazy.observations_at(np.array([], dtype=np.int64)).shape == (0, 4) and lazy._obs is None
    np.testing.assert_array_equal(lazy.obs, whole)  # asked for all: read once, then served from memory
    np.testing.assert_array_equal(np.concatenate([c for _, c in lazy.observation_chunks()]), whole)


def test_a_file_whose_frames_differ_from_the_others_is_refused_at_open(tmp_path):
    from gym_dream.error import DataFormatError
    from trainers.data.dataset import Episode, write_shard

    cfg = CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), steps=None, episodes=3, workers=1, seed=3)
    collect(cfg)
    odd = Episode(np.zeros((3, 5), np.float32), np.zeros(2, np.int64), np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool))
    bad = write_shard(tmp_path / "d", 1000, [odd])
    with pytest.raises(DataFormatError, match=r"shape \(5,\).*holds \(4,\).*same env") as e:
        EpisodeDataset(cfg.out)
    assert str(bad) in str(e.value)
