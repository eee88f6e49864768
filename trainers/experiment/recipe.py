"""A recipe: one declarative entry per env, the whole World Models experiment as data.

A recipe is a TOML file (``trainers/experiment/recipes/<name>.toml`` for gym-dream's own, or any path): the real
env, the collection budget, the fit's sizes, the temperatures, the CMA-ES and SB3 budgets, the collection rounds
and how the headline agent is chosen. The runner (:mod:`trainers.experiment.runner`) takes it and a work
directory. Prose (what the runs showed, the commands that reproduced a reported run) is Markdown next to the
results, never part of a recipe.

The dream id and the model name come from :mod:`gym_dream.catalogue` for the envs it knows; a recipe for a new
env names them itself (``dream_id = "Dream-MyEnv-v0"``, ``model_name = "myenv"``) and the runner registers the id.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gym_dream.catalogue import by_real_id
from gym_dream.envs.core import check_tau, tau_name
from trainers.experiment.workdir import Tau
from trainers.fit.dispatch import DEFAULT_FAMILY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES_DIR = Path(__file__).parent / "recipes"


@dataclass(frozen=True)
class Recipe:
    name: str
    """the experiment's name: its work folder (runs/<name>) and its results (<name>.md / .json)"""
    real_id: str
    """the real Gymnasium id the data comes from and the agents are scored on"""
    taus: tuple[Tau, ...]
    """the temperature sweep: one CMA-ES run per tau (and per seed of ``cmaes_seeds``); a tau is a number, or a range
    ``[low, high]`` (each dream episode draws its own temperature from it: ``gym.make(..., tau=(low, high))``)"""
    main_tau: Tau
    """the tau of the main agent, the SB3 agents and the collection rounds' controller (one of ``taus``)"""
    collect: dict[str, Any]
    """``CollectConfig`` fields of the first collection (episodes / steps, workers, seed, policy ...)"""
    fit: dict[str, Any]
    """``FitConfig`` fields (family, sizes, epochs, preset, half ...); without a ``family``, ``gym-dream fit``'s default
    (``trainers.fit.dispatch.DEFAULT_FAMILY``, dreamer)"""
    cmaes: dict[str, Any]
    """``CMAESConfig`` fields (generations, popsize, rollouts ...)"""
    dream_id: str = ""
    """the Dream-* id (default: the catalogue's for ``real_id``)"""
    model_name: str = ""
    """the default model's name (default: the catalogue's)"""
    cmaes_seeds: tuple[int, ...] = (0,)
    """one CMA-ES run per seed and tau; each tau's row scores the run and output ('best' or 'mean') the dream prefers"""
    episodes: int = 100
    """real episodes of the main agent and of the test seeds"""
    sweep_episodes: int = 100
    """real episodes of the sweep's other taus and of the SB3 rows"""
    random_episodes: int = 100
    """real episodes of the random-policy row"""
    real_baseline: bool = False
    """also train the controller on the REAL env with the real steps the dream's data cost"""
    sb3: dict[str, dict[str, Any]] = field(default_factory=dict)
    """stable-baselines3 agents trained in the dream at ``main_tau``: algo -> ``SB3Config`` fields"""
    iterate: dict[str, Any] = field(default_factory=dict)
    """collection rounds driven by the main-tau controller (World Models' iterative procedure): rounds, steps per
    round, check_episodes, ``agent`` (who drives: 'cmaes', the default, or one of the ``sb3`` algorithms), the
    ``AgentPolicy`` noise (sigma, theta, random) and ``refit`` (FitConfig fields)"""
    noise_row: dict[str, Any] = field(default_factory=dict)
    """also score the main-tau controller with the rounds' OU noise ({sigma, theta}; empty: no such row)"""
    select: dict[str, Any] = field(default_factory=dict)
    """choose ONE agent on real validation episodes: {episodes, seed, test_seed, candidates: 'runs' | 'taus'}"""
    reproduce: str = ""
    """the command that runs this recipe (a recipe derived from an env id: ``gym-dream experiment --env-id ID``);
    default ``gym-dream experiment <name> all``"""

    def __post_init__(self) -> None:
        known = by_real_id(self.real_id)
        if not self.dream_id or not self.model_name:
            if known is None:
                raise ValueError(f"Recipe {self.name!r}: {self.real_id} is not in gym_dream.catalogue, so the recipe must name "
                                 f"its dream_id (e.g. \"Dream-MyEnv-v0\") and model_name (e.g. \"myenv\").")
            object.__setattr__(self, "dream_id", self.dream_id or known.dream_id)
            object.__setattr__(self, "model_name", self.model_name or known.model)
        if not self.dream_id.startswith("Dream-"):
            raise ValueError(f"Recipe {self.name!r}: dream_id {self.dream_id!r} must start with 'Dream-'.")
        if isinstance(self.taus, (str, bytes)) or not isinstance(self.taus, (list, tuple)) or not self.taus:
            raise ValueError(f"Recipe {self.name!r}: taus must be a non-empty list of temperatures > 0, each a number or a "
                             f"range [low, high] (e.g. taus = [1.0, 1.15, [1.0, 1.5]]), got {self.taus!r}.")
        object.__setattr__(self, "taus", tuple(_recipe_tau(self.name, "taus", t) for t in self.taus))
        object.__setattr__(self, "main_tau", _recipe_tau(self.name, "main_tau", self.main_tau))
        object.__setattr__(self, "cmaes_seeds", tuple(int(s) for s in self.cmaes_seeds))
        if len(set(self.taus)) != len(self.taus):
            raise ValueError(f"Recipe {self.name!r}: taus {[tau_name(t) for t in self.taus]} name a temperature twice.")
        if self.main_tau not in self.taus:
            raise ValueError(f"Recipe {self.name!r}: main_tau {tau_name(self.main_tau)} is not one of taus "
                             f"{[tau_name(t) for t in self.taus]}.")
        if not self.cmaes_seeds:
            raise ValueError(f"Recipe {self.name!r}: cmaes_seeds must name at least one seed.")
        driver = self.iterate.get("agent", "cmaes")
        if driver != "cmaes" and driver not in self.sb3:
            raise ValueError(f"Recipe {self.name!r}: iterate.agent {driver!r} drives the rounds, so it must be 'cmaes' or one of "
                             f"the recipe's sb3 agents {sorted(self.sb3)}.")
        for n in ("episodes", "sweep_episodes", "random_episodes"):
            if getattr(self, n) < 1:
                raise ValueError(f"Recipe {self.name!r}: {n} must be >= 1, got {getattr(self, n)}.")

    def tiny(self) -> "Recipe":
        """Tiny budgets and the tiny network preset: the whole path in minutes, the numbers mean nothing."""
        sizes = ("z_dim", "hidden", "vae_channels", "seq_len")
        mdnrnn = self.fit.get("family", DEFAULT_FAMILY) == "mdnrnn"
        budgets = {"vae_epochs": 1, "rnn_epochs": 2, "vae_frames": 2000} if mdnrnn else {}  # the other families: the tiny preset's
        return replace(
            self, taus=(self.main_tau,),
            collect={**self.collect, "episodes": 6, "steps": 3000 if self.collect.get("steps") else None},
            fit={**{k: v for k, v in self.fit.items() if k not in sizes}, "preset": "tiny", **budgets},
            iterate={**self.iterate, "steps": 1000, "check_episodes": 1, **({"refit": {"vae_epochs": 1, "rnn_epochs": 1}} if mdnrnn else {})}
            if self.iterate else {},
            select={**self.select, "episodes": 1} if self.select else {},
            cmaes=dict(generations=2, popsize=4, rollouts=2), episodes=2, sweep_episodes=2, random_episodes=2,
            sb3={a: {**kw, "timesteps": 256, "num_envs": 4, "eval_every": 128, "eval_episodes": 2} for a, kw in self.sb3.items()},
        )


def _recipe_tau(name: str, key: str, tau: Any) -> Tau:
    """A recipe's temperature: a number, or a range [low, high] (a TOML array), as the dream envs take it."""
    if isinstance(tau, str):
        raise ValueError(f"Recipe {name!r}: {key} entry {tau!r} is a string; write a temperature as a number (1.15) and a "
                         f"range as an array of two ([1.0, 1.5]).")
    try:
        return check_tau(tau)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Recipe {name!r}: {key}: {e}") from None


def available_recipes() -> list[str]:
    """The names of gym-dream's own recipes."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def load_recipe(recipe: str | Path) -> Recipe:
    """A recipe by name (one of :func:`available_recipes`) or from a TOML file."""
    path = Path(recipe)
    if not path.suffix:
        path = RECIPES_DIR / f"{recipe}.toml"
        if not path.is_file():
            raise ValueError(f"No recipe named {recipe!r}: choose from {available_recipes()} or pass a .toml file.")
    if not path.is_file():
        raise ValueError(f"No recipe file {path}.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"Recipe {path} is not valid TOML: {e}") from None
    names = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"Recipe {path}: unknown keys {unknown}; a recipe has {sorted(names)}.")
    data.setdefault("name", path.stem)
    missing = sorted(f.name for f in dataclasses.fields(Recipe)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in data)
    if missing:
        raise ValueError(f"Recipe {path}: missing keys {missing}.")
    return Recipe(**data)
