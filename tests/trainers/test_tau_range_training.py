"""Training in a dream whose temperature is drawn per episode: the CLI's --tau LOW:HIGH, CMA-ES and SB3 (with resume)."""

import argparse
import json

import pytest

from trainers.cli.commands import main
from trainers.cli.options import number_or_range, tau_arg


def test_tau_argument_reads_a_number_a_range_or_none():
    assert number_or_range("1.15") == 1.15 and number_or_range("1.0:1.7") == (1.0, 1.7) and number_or_range("none") is None
    for bad in ("1:2:3", "a:1", "fast"):
        with pytest.raises(argparse.ArgumentTypeError, match="LOW:HIGH"):
            number_or_range(bad)
    # a list of temperatures to score at (evaluate --taus, experiment --taus) takes ranges too, never 'none'
    assert tau_arg("1.0:1.5") == (1.0, 1.5) and tau_arg("1.15") == 1.15
    with pytest.raises(argparse.ArgumentTypeError, match="a temperature or a range"):
        tau_arg("none")


def test_cmaes_and_sb3_train_in_a_tau_range_and_record_it(tiny_cartpole_model, tmp_path, capsys):
    m = str(tiny_cartpole_model)
    main(["train", "cmaes", "--model", m, "--out", str(tmp_path / "c"), "--generations", "2", "--popsize", "4", "--rollouts", "2",
          "--max-episode-steps", "20", "--tau", "0.8:1.4"])
    assert json.loads((tmp_path / "c" / "mean" / "controller.json").read_text())["tau"] == [0.8, 1.4]
    ppo = ["train", "ppo", "--model", m, "--out", str(tmp_path / "p"), "--timesteps", "128", "--num-envs", "4", "--eval-every", "64",
           "--eval-episodes", "2", "--tau", "0.8:1.4", "--hparams", '{"n_steps": 16, "batch_size": 32, "n_epochs": 1}']
    main(ppo)
    assert json.loads((tmp_path / "p" / "agent.json").read_text())["tau"] == [0.8, 1.4]
    main(ppo)  # the same run again: finished, so it returns (its stored range is the same setting, not a different one)
    capsys.readouterr()
    assert main([*ppo[:-3], "1.0:1.4", *ppo[-2:]]) != 0  # another range is another run: refused, naming the setting
    assert "differing: tau" in capsys.readouterr().err


def test_the_planner_refuses_a_tau_range_with_the_fix(small_rssm):
    from trainers.planning.cem import CEMConfig, CEMPlanner

    with pytest.raises(ValueError, match="one temperature"):
        CEMPlanner(small_rssm, CEMConfig(horizon=3, iterations=1, candidates=8, top_k=2, tau=(1.0, 1.5)))
