"""The Ray backend (trainers/infra/ray_backend.py) on a local Ray instance: collection, real evaluation and CMA-ES give what the
local backend gives for the same seeds, and a worker killed mid-job loses no finished episode and duplicates none.

One Ray instance (2 CPUs) is shared by the module; every test here is in one xdist group (``make test`` runs
``--dist loadgroup``), so one pytest worker starts it."""

import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gym_dream
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.data.collect import CollectConfig, collect, episode_seed
from trainers.agents.controller import LinearController
from trainers.data.dataset import dataset_index, load_file, shard_paths
from trainers.data.policies import RandomPolicy

pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors get this module's test policies by value
    temp = tempfile.mkdtemp(prefix="gdray", dir="/tmp")  # short: Ray's socket paths must fit in 107 characters
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def _episodes_by_key(out: Path) -> dict[int, tuple]:
    """Every stored episode's arrays, by key; asserts no key is stored twice."""
    episodes: dict[int, tuple] = {}
    for stored in dataset_index(out)[0]:
        f = load_file(stored.path)
        ends = np.concatenate([[0], np.cumsum(f["lengths"])])
        for j, key in enumerate(int(k) for k in f["keys"]):
            a, b = ends[j], ends[j + 1]
            assert key not in episodes, f"episode key {key} stored twice"
            episodes[key] = (f["obs"][a + j : b + j + 1], f["actions"][a:b], f["rewards"][a:b], f["terminated"][a:b], f["truncated"][a:b])
    return episodes


def _assert_same_episode(got: tuple, want: tuple) -> None:
    for x, y in zip(got, want):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def local_cartpole(tmp_path_factory):
    """16 CartPole episodes from the local collector, one env."""
    out = tmp_path_factory.mktemp("local") / "cartpole"
    collect(CollectConfig(env_id="CartPole-v1", out=str(out), episodes=16, steps=None, workers=1, seed=3))
    return _episodes_by_key(out)


def test_ray_collection_stores_the_local_collectors_episodes(ray_session, local_cartpole, tmp_path):
    out = tmp_path / "ray"
    summary = collect(CollectConfig(env_id="CartPole-v1", out=str(out), episodes=16, steps=None, workers=2, seed=3, backend="ray"))
    assert summary["episodes"] == summary["new_episodes"] == 16
    got = _episodes_by_key(out)
    assert sorted(got) == sorted(local_cartpole) == list(range(16))  # no more episodes started than the target
    for key in got:
        _assert_same_episode(got[key], local_cartpole[key])


def test_ray_collection_keeps_the_step_budget(ray_session, local_cartpole, tmp_path):
    """One worker: the very shards of the local collector; two: the budget exactly, every episode the local one (the ones
    the budget cut, its first steps, marked truncated)."""
    local, one, two = tmp_path / "local", tmp_path / "one", tmp_path / "two"
    collect(CollectConfig(env_id="CartPole-v1", out=str(local), steps=250, workers=1, seed=3))
    collect(CollectConfig(env_id="CartPole-v1", out=str(one), steps=250, workers=1, seed=3, backend="ray"))
    assert [p.name for p in shard_paths(one)] == [p.name for p in shard_paths(local)]
    for a, b in zip(shard_paths(one), shard_paths(local)):
        fa, fb = load_file(a), load_file(b)
        assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)

    assert collect(CollectConfig(env_id="CartPole-v1", out=str(two), steps=250, workers=2, seed=3, backend="ray"))["steps"] == 250
    got = _episodes_by_key(two)
    assert sorted(got) == list(range(len(got)))
    cut = 0
    for key, episode in got.items():
        want = local_cartpole[key]
        n = len(episode[1])
        if n < len(want[1]):  # cut by the budget
            cut += 1
            assert episode[4][-1]
            want = (want[0][: n + 1], *(x[:n] for x in want[1:4]), np.r_[want[4][: n - 1], True])
        _assert_same_episode(episode, want)
    assert cut <= 2  # at most the episodes running when the budget ran out


class DiesOnce:
    """A collecting policy factory: uniform random actions, except that the policy of episode ``key`` kills its own
    process (SIGKILL, a dead Ray worker) at its 5th step, the first time only (``marker`` records it)."""

    def __init__(self, marker: Path, seed: int, key: int):
        self.marker, self.doomed = str(marker), episode_seed(seed, key, 1)

    def __call__(self, space, num_envs: int, seed: int):
        policy, doomed, marker = RandomPolicy(space, num_envs, seed), seed == self.doomed, self.marker
        steps = []

        def act(obs):
            steps.append(1)
            if doomed and len(steps) == 5 and not os.path.exists(marker):
                Path(marker).touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return policy(obs)

        return act


def test_a_killed_worker_loses_no_finished_episode_and_duplicates_none(ray_session, tmp_path):
    marker = tmp_path / "killed"
    kw = dict(env_id="CartPole-v1", episodes=12, steps=None, seed=4)
    marker.touch()  # the reference run never dies
    collect(CollectConfig(out=str(tmp_path / "local"), workers=1, **kw), policy_factory=DiesOnce(marker, 4, 5))
    marker.unlink()
    summary = collect(CollectConfig(out=str(tmp_path / "ray"), workers=2, backend="ray", **kw), policy_factory=DiesOnce(marker, 4, 5))
    assert marker.exists()  # a worker did die, mid-episode
    assert summary["episodes"] == 12
    got, want = _episodes_by_key(tmp_path / "ray"), _episodes_by_key(tmp_path / "local")
    assert sorted(got) == sorted(want) == list(range(12))  # the killed episode was run again, from its start; nothing twice
    for key in got:
        _assert_same_episode(got[key], want[key])


def test_when_every_worker_dies_the_rerun_resumes(ray_session, tmp_path):
    from trainers.infra.ray_backend import WorkersLost

    marker = tmp_path / "killed"
    kw = dict(env_id="CartPole-v1", out=str(tmp_path / "ray"), episodes=10, steps=None, seed=4, workers=1, backend="ray")
    with pytest.raises(WorkersLost, match="run the same command again"):
        collect(CollectConfig(**kw), policy_factory=DiesOnce(marker, 4, 6))
    assert sorted(_episodes_by_key(tmp_path / "ray")) == list(range(6))  # every episode finished before the kill is kept
    collect(CollectConfig(**kw), policy_factory=DiesOnce(marker, 4, 6))
    marker.touch()
    collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "local"), episodes=10, steps=None, seed=4, workers=1),
            policy_factory=DiesOnce(marker, 4, 6))
    got, want = _episodes_by_key(tmp_path / "ray"), _episodes_by_key(tmp_path / "local")
    assert sorted(got) == sorted(want) == list(range(10))
    for key in got:
        _assert_same_episode(got[key], want[key])


class _Flaky:
    """A Ray actor whose call on item 2 kills its process, the first time only."""

    def __init__(self, marker: str):
        self.marker = marker

    def square(self, x: int) -> int:
        if x == 2 and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return x * x


def test_work_of_a_dead_actor_runs_again_on_the_others(ray_session, tmp_path):
    """What keeps a CMA-ES generation whole when a shard's actor dies."""
    from trainers.infra.ray_backend import Actors, WorkersLost

    actors = Actors(_Flaky, 2, str(tmp_path / "killed"))
    try:
        assert actors.map("square", [(x,) for x in range(6)]) == [x * x for x in range(6)]
        assert (tmp_path / "killed").exists() and len(actors.actors) == 1
        (tmp_path / "killed").unlink()
        with pytest.raises(WorkersLost):
            actors.map("square", [(2,)])
    finally:
        actors.close()


def _agents(n: int):
    m = gym_dream.resolve_model("cartpole")
    size = LinearController(m.feature_dim, m.action_space).num_params
    return [LinearController(m.feature_dim, m.action_space, np.random.default_rng(i).normal(size=size).astype(np.float32)) for i in range(n)]


def test_ray_evaluation_gives_the_local_runners_episodes(ray_session):
    from trainers.evaluation.rollout import real_episodes

    agents = _agents(6)
    local = real_episodes(agents, "CartPole-v1", "cartpole", range(20, 26))
    on_ray = real_episodes(agents, "CartPole-v1", "cartpole", range(20, 26), workers=3, backend="ray")
    assert on_ray == local and len({e.ret for e in local}) > 1


def test_evaluate_on_the_command_line_with_the_ray_backend(ray_session, tmp_path, capsys):
    from trainers.cli.commands import main

    agent = _agents(1)[0]
    agent.save(tmp_path / "agent", {"model": "cartpole"})
    args = ["evaluate", str(tmp_path / "agent"), "--model", "cartpole", "--episodes", "4", "--seed", "7"]
    assert main([*args, "--report", str(tmp_path / "local")]) == 0
    assert main([*args, "--workers", "2", "--backend", "ray", "--report", str(tmp_path / "ray")]) == 0
    local, ray = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "ray"))
    assert ray[0]["real_returns"] == local[0]["real_returns"] and ray[0]["real"] == local[0]["real"]


def _cmaes(out: Path, generations: int, backend: str) -> CMAESConfig:
    return CMAESConfig(out=str(out), generations=generations, popsize=4, rollouts=2, shards=2, max_episode_steps=40, seed=1,
                       backend=backend)


def _log(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (out / "log.jsonl").read_text().splitlines()]


def test_cmaes_on_ray_is_the_local_search_with_the_same_checkpoints(ray_session, tmp_path):
    from safetensors.numpy import load_file as load_tensors

    local, on_ray = tmp_path / "local", tmp_path / "ray"
    train_cmaes(_cmaes(local, 3, "local"))
    train_cmaes(_cmaes(on_ray, 2, "ray"))
    train_cmaes(_cmaes(on_ray, 3, "local"))  # the checkpoint Ray wrote resumes here: the same state, the same search
    assert _log(on_ray) == _log(local) and len({e["mean_fitness"] for e in _log(local)}) > 1
    a, b = load_tensors(str(local / "cmaes_state.safetensors")), load_tensors(str(on_ray / "cmaes_state.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for kind in ("mean", "best"):
        np.testing.assert_array_equal(LinearController.load(on_ray / kind).params, LinearController.load(local / kind).params)


def test_cmaes_shards_are_checked(tmp_path):
    with pytest.raises(ValueError, match="divides --popsize"):
        train_cmaes(CMAESConfig(out=str(tmp_path / "a"), popsize=6, shards=4))
    with pytest.raises(ValueError, match="--shards N"):
        train_cmaes(CMAESConfig(out=str(tmp_path / "b"), popsize=6, backend="ray"))


def test_the_local_backend_needs_no_ray(tmp_path, monkeypatch):
    from gym_dream.error import DependencyNotInstalled

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    assert collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "d"), episodes=2, steps=None, workers=1))["episodes"] == 2
    with pytest.raises(DependencyNotInstalled, match=r'pip install "gym-dream\[ray\]"'):
        collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "e"), episodes=2, steps=None, workers=1, backend="ray"))


def test_real_env_cmaes_on_ray_is_the_local_search(ray_session, tmp_path):
    """The comparison row (CMA-ES on the real env): the candidates' real episodes as Ray tasks, the same search."""
    from trainers.agents.cmaes import train_cmaes_real

    local = train_cmaes_real("CartPole-v1", "cartpole", tmp_path / "local", budget_steps=200, popsize=4, workers=1)
    on_ray = train_cmaes_real("CartPole-v1", "cartpole", tmp_path / "ray", budget_steps=200, popsize=4, workers=2, backend="ray")
    assert on_ray["generations"] == local["generations"] > 1 and on_ray["real_steps"] == local["real_steps"]
    assert _log(tmp_path / "ray") == _log(tmp_path / "local")


class _CannotStart:
    def __init__(self):
        raise ModuleNotFoundError("No module named 'Box2D'")

    def square(self, x: int) -> int:
        return x * x


def test_a_worker_that_cannot_start_names_the_cause(ray_session):
    from trainers.infra.ray_backend import Actors, WorkerSetupFailed

    actors = Actors(_CannotStart, 1)
    try:
        with pytest.raises(WorkerSetupFailed, match="could not start: ModuleNotFoundError: No module named 'Box2D'.*gym-dream"):
            actors.map("square", [(1,)])
    finally:
        actors.close()
