"""Progress: a plain line every few percent when the output is not a terminal, nothing with GYM_DREAM_PROGRESS=0."""

from __future__ import annotations

import io

from trainers.infra import progress as progress_module
from trainers.infra.progress import PlainProgress, progress


def test_plain_lines_every_five_percent_and_the_last_state_once():
    out = io.StringIO()
    bar = PlainProgress(total=200, desc="collect CartPole-v1", unit="step", file=out, seconds=1e9)
    for _ in range(200):
        bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 20  # 5 %, 10 %, ..., 100 %
    assert lines[0].startswith("collect CartPole-v1: 10/200 step (5%), ") and lines[-1].startswith("collect CartPole-v1: 200/200 step (100%)")


def test_plain_lines_by_time_without_a_total_and_a_final_line(monkeypatch):
    clock = iter(range(0, 10_000, 10))  # each call 10 s later
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = PlainProgress(desc="fit", unit="batch", file=out, seconds=30)
    for _ in range(7):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["fit: 3 batch", "fit: 6 batch", "fit: 7 batch"]


def test_the_environment_chooses_silent_plain_or_bar(monkeypatch, capsys):
    monkeypatch.setenv("GYM_DREAM_PROGRESS", "0")
    bar = progress(total=10, desc="quiet")
    bar.update(10)
    bar.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("GYM_DREAM_PROGRESS", "auto")  # pytest's stderr is not a terminal
    bar = progress(total=10, desc="piped", unit="ep")
    assert isinstance(bar, PlainProgress)
    bar.update(10)
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["piped: 10/10 ep (100%), 0 s"]
    monkeypatch.setenv("GYM_DREAM_PROGRESS", "1")
    assert not isinstance(progress(total=10), PlainProgress)
