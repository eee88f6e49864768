"""CMA-ES resume: the optimizer state is data (no pickle), and a run stopped or killed anywhere continues the same search."""

import json
import pickle

import cma
import numpy as np
import pytest

import gym_dream
import trainers.agents.cmaes as cmaes
from trainers.agents.cma_state import es_state, restore_es
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.controller import LinearController


def _cfg(out, generations):
    return CMAESConfig(out=str(out), generations=generations, popsize=6, rollouts=2, max_episode_steps=30, seed=2)


def _log(out):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmaes") / "whole"
    train_cmaes(_cfg(out, 4))
    return out


def _same_run(out, reference):
    assert _log(out) == _log(reference)  # the same candidates scored the same, generation by generation
    for kind in ("mean", "best"):
        np.testing.assert_array_equal(LinearController.load(out / kind).params, LinearController.load(reference / kind).params)


@pytest.mark.parametrize("n, popsize, k", [(10, 6, 1), (5, 4, 7), (40, 8, 3)])  # popsize 4 in 5-D: pycma's selective mirrors
def test_restored_strategy_asks_the_same_candidates(n, popsize, k, tmp_path):
    def make():
        return cma.CMAEvolutionStrategy(np.zeros(n), 0.1, {"popsize": popsize, "seed": 1, "verbose": -9})

    def f(xs):
        return [float(np.sum((x - 0.3) ** 2)) for x in xs]

    es, asked = make(), []
    for _ in range(k + 12):
        xs = es.ask()
        asked.append(np.array(xs))
        es.tell(xs, f(xs))
    es = make()
    for _ in range(k):
        xs = es.ask()
        es.tell(xs, f(xs))
    arrays, values = es_state(es)
    np.random.seed(12345)  # another process: the global numpy state is restored from the saved one
    resumed = make()
    restore_es(resumed, {a: v.copy() for a, v in arrays.items()}, json.loads(json.dumps(values)))
    for want in asked[k:]:
        xs = resumed.ask()
        np.testing.assert_array_equal(np.array(xs), want)
        resumed.tell(xs, f(xs))


def test_a_stopped_run_resumes_the_same_search_without_pickle(uninterrupted, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    train_cmaes(_cfg(out, 2))
    assert (out / cmaes.STATE).is_file() and not (out / "cmaes_state.pkl").exists()

    def no_pickle(*args, **kwargs):
        raise AssertionError("resume must not unpickle")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    train_cmaes(_cfg(out, 4))
    _same_run(out, uninterrupted)


def test_a_kill_between_the_log_and_the_state_repeats_no_generation(uninterrupted, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    write = cmaes._write_state

    def killed_at_3(path, es, record, best):
        if record["generation"] == 3:
            raise KeyboardInterrupt("killed after the log append, before the state write")
        write(path, es, record, best)

    monkeypatch.setattr(cmaes, "_write_state", killed_at_3)
    with pytest.raises(KeyboardInterrupt):
        train_cmaes(_cfg(out, 4))
    assert [e["generation"] for e in _log(out)] == [1, 2, 3]  # generation 3 logged, its state not written
    monkeypatch.setattr(cmaes, "_write_state", write)
    train_cmaes(_cfg(out, 4))
    assert [e["generation"] for e in _log(out)] == [1, 2, 3, 4]
    _same_run(out, uninterrupted)


def test_a_partial_last_log_line_does_not_stop_resume(uninterrupted, tmp_path):
    out = tmp_path / "partial"
    train_cmaes(_cfg(out, 2))
    with open(out / "log.jsonl", "a") as f:
        f.write('{"generation": 3, "mean_fit')  # killed mid-append
    train_cmaes(_cfg(out, 4))
    _same_run(out, uninterrupted)


def test_a_log_shorter_than_the_state_and_an_old_pickle_are_refused(tmp_path):
    out = tmp_path / "short"
    train_cmaes(_cfg(out, 2))
    (out / "log.jsonl").write_text((out / "log.jsonl").read_text().splitlines(keepends=True)[0])
    with pytest.raises(ValueError, match="1 whole generations but the CMA-ES state has 2"):
        train_cmaes(_cfg(out, 3))
    (out / cmaes.STATE).write_bytes((out / cmaes.STATE).read_bytes()[:100])  # a state file cut short
    with pytest.raises(gym_dream.error.DataFormatError, match="not a whole CMA-ES state"):
        train_cmaes(_cfg(out, 3))
    old = tmp_path / "old"
    old.mkdir()
    (old / "cmaes_state.pkl").write_bytes(pickle.dumps("a crafted payload would run here"))
    with pytest.raises(ValueError, match="not loaded"):
        train_cmaes(_cfg(old, 3))


def test_a_state_naming_an_attribute_it_never_saves_is_refused(tmp_path):
    es = cma.CMAEvolutionStrategy(np.zeros(3), 0.1, {"popsize": 4, "seed": 1, "verbose": -9})
    arrays, values = es_state(es)
    with pytest.raises(ValueError, match="never saves"):
        restore_es(es, arrays, {**values, "opts.randn": {"value": 1}})
    with pytest.raises(ValueError, match="not pycma's"):
        restore_es(es, arrays, {**values, "sm": {"object": "os:system"}})


def test_a_search_can_start_from_a_controller(uninterrupted, tmp_path):
    start = LinearController.load(uninterrupted / "mean")
    out = tmp_path / "from-mean"
    cfg = CMAESConfig(**{**_cfg(out, 1).__dict__, "init": str(uninterrupted / "mean"), "sigma0": 1e-9})
    train_cmaes(cfg)
    # with a vanishing step size the first generation's mean is the starting controller
    np.testing.assert_allclose(LinearController.load(out / "mean").params, start.params, atol=1e-6)
    assert json.loads((out / "mean" / "controller.json").read_text())["config"]["init"] == str(uninterrupted / "mean")
    wrong = LinearController(3, start.action_space).save(tmp_path / "wrong")
    with pytest.raises(ValueError, match="Pass a controller trained on this model"):
        train_cmaes(CMAESConfig(**{**_cfg(tmp_path / "w", 1).__dict__, "init": str(wrong)}))
    with pytest.raises(ValueError, match="not a linear controller"):
        train_cmaes(CMAESConfig(**{**_cfg(tmp_path / "w2", 1).__dict__, "init": str(tmp_path)}))
