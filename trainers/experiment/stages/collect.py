"""Stages ``collect`` (the first real data, with the recipe's policy) and ``fit`` (the world model on it)."""

from __future__ import annotations

import json

from trainers.data.collect import CollectConfig, collect
from trainers.experiment.recipe import Recipe
from trainers.experiment.workdir import WorkDir
from trainers.fit.dispatch import FitConfig, fit


def collect_data(recipe: Recipe, work: WorkDir) -> None:
    print(json.dumps(collect(CollectConfig(env_id=recipe.real_id, out=str(work.data), **recipe.collect))))


def fit_model(recipe: Recipe, work: WorkDir, device: str = "cpu", rnn_minutes: float | None = None, init: str | None = None) -> None:
    """Fit ``work.model`` on ``work.data``. After a collection round the fit starts from the last round's model with the
    recipe's shorter ``iterate.refit`` budget; ``init`` (a model directory) names the starting model instead, e.g. to
    refit the same data with changed settings from a model moved aside."""
    if work.has_model():
        print(f"{work.model} exists; delete it to fit again")
        return
    kwargs = dict(recipe.fit)
    rounds = work.rounds()
    if (rounds or init) and recipe.iterate.get("refit"):  # after a collection round: start from the last round's model
        kwargs.update(recipe.iterate["refit"], init=init or str(rounds[-1].work.model))
    elif init:
        kwargs.update(init=init)
    if "vae_channels" in kwargs:
        kwargs["vae_channels"] = tuple(kwargs["vae_channels"])
    fit(FitConfig(data=str(work.data), out=str(work.model), device=device, rnn_minutes=rnn_minutes, **kwargs))
