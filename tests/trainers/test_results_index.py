"""benchmarks/results_index.py: results/README.md generated from the results JSON (issue 48)."""

import json

import numpy as np
import pytest

pytest.importorskip("rliable")

from benchmarks.results_index import NOT_RECORDED, evaluations, intervals, main, render  # noqa: E402


def _report(path, agent, returns, **extra):
    row = {"agent": agent, "real_env_id": "CartPole-v1", "dream": {"1.0": {"mean": 400.0, "std": 5.0, "episodes": 8}},
           "real": {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "episodes": len(returns)},
           "real_seeds": [0, len(returns) - 1], "real_returns": returns, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([row]))


def test_the_index_lists_every_evaluation_with_its_command_story_and_intervals(tmp_path):
    res = tmp_path / "results"
    returns = [10.0, 20.0, 30.0, 40.0, 500.0, 60.0, 70.0, 80.0]
    _report(res / "runs" / "cartpole" / "ppo_s0.json", "runs/ppo-s0", returns,
            provenance={"command": "gym-dream evaluate runs/ppo-s0/best --episodes 8", "commit": "0123456789abcdef"})
    _report(res / "cartpole_old.json", "cmaes", [500.0, 500.0])
    # an evaluation nested in a benchmark's own JSON, its env named by the document
    (res / "bench.json").write_text(json.dumps({"env_id": "Pendulum-v1", "command": "python benchmarks/x.py",
                                                "finals": [{"agent": "sac", "real": {"mean": -150.0, "std": 10.0, "episodes": 30}}]}))
    (res / "cartpole.md").write_text("The PPO seeds: [ppo_s0](runs/cartpole/ppo_s0.json); the old row: cartpole_old.json.\n")
    (res / "runs.md").write_text("Every run: ppo_s0.json, cartpole_old.json\n")

    text = render(res)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| env")]
    assert len(rows) == 3 and "## CartPole-v1" in text and "## Pendulum-v1" in text
    ppo = next(r for r in rows if "runs/ppo-s0" in r)
    assert "`gym-dream evaluate runs/ppo-s0/best --episodes 8` @ `0123456789ab`" in ppo
    assert "[cartpole.md](cartpole.md)" in ppo  # the closest page by name, not runs.md
    assert "[ppo_s0.json](runs/cartpole/ppo_s0.json)" in ppo and "τ 1.0: 400.0 ± 5.0 (8)" in ppo
    cells = [c.strip() for c in ppo.split("|")]
    mean, iqm = cells[6], cells[7]
    m, lo, hi = (float(x) for x in mean.replace("[", "").replace("]", "").replace(",", "").split())
    assert m == pytest.approx(np.mean(returns), abs=0.05) and lo < m < hi
    x = np.sort(returns)
    assert float(iqm.split()[0]) == pytest.approx(x[2:6].mean(), abs=0.05)  # the middle half of 8 episodes
    old = next(r for r in rows if "`cmaes`" in r)
    assert NOT_RECORDED in old and "| - | - |" not in old  # two episodes: intervals still computed
    nested = next(r for r in rows if "`sac`" in r)
    assert "python benchmarks/x.py" in nested and "| - | - |" in nested  # no per-episode returns: no interval
    assert evaluations({"a": [{"real": {"mean": 1, "episodes": 1}}]})[0][0] == ("a", "0")


def test_check_says_whether_the_index_is_up_to_date(tmp_path, capsys):
    res = tmp_path / "results"
    _report(res / "a.json", "cmaes", [1.0, 2.0, 3.0])
    assert main(["--results", str(res), "--check"]) == 1
    assert main(["--results", str(res)]) == 0
    assert main(["--results", str(res), "--check"]) == 0 and "up to date" in capsys.readouterr().out


def test_the_intervals_are_the_same_on_every_run():
    x = np.random.default_rng(1).normal(size=40)
    state = np.random.get_state()[1].copy()
    assert intervals(x) == intervals(x) and intervals(x, seed=1) != intervals(x)
    assert (np.random.get_state()[1] == state).all()  # numpy's global generator is left as it was
