"""Sample-efficient variants of the CEM planner: iCEM (Pinneri et al. 2020) and MPPI weighting, as options.

:class:`ICEMPlanner` is :class:`~trainers.planning.cem.CEMPlanner` with these options of :class:`ICEMConfig`, each off
by default (all off, it plans bit for bit as the CEM planner with the same seed):

* ``noise_beta``: candidates deviate from the mean by coloured noise whose power spectrum along the horizon falls
  as ``1 / f ** noise_beta`` (:func:`powerlaw_noise`; 0 is white noise, 2 is Brownian-like: smooth action sequences);
* ``population_decay``: iteration ``i`` samples ``candidates / population_decay ** i`` sequences, at least
  ``2 * top_k`` (:func:`population`);
* ``keep_elites``: this fraction of the ``top_k`` elites goes on to the next iteration, and at the first iteration
  of the next decision, shifted by one step (:func:`shift`);
* ``warm_start``: each decision starts from the previous decision's final mean plan shifted by one step (the
  last step from the action space's centre) instead of the centre of the action space;
* ``execute="best"``: take the first action of the best-scoring sequence seen in any iteration (the final mean
  plan is scored with the last iteration) instead of the first action of the mean plan;
* ``weighting="mppi"``: refit the mean and spread to all candidates weighted by ``exp((R - max R) / (temperature *
  std R))`` (MPPI's exponential weights, scale-free: ``temperature`` is in units of the candidates' return spread)
  instead of the ``top_k`` best with equal weights.

The named presets are in :data:`PLANNER_PRESETS` beside CEM's; :func:`make_planner` builds either planner from a
preset name or a config, and :func:`model_steps` says how many model steps one decision costs. What they buy on
cartpole-swingup is measured by benchmarks/planner.py (results/planner.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from trainers.fit import presets
from trainers.planning.cem import CEM_PRESETS, CEMConfig, CEMPlanner

EXECUTE = ("mean", "best")
WEIGHTING = ("topk", "mppi")


@dataclass
class ICEMConfig(CEMConfig):
    noise_beta: float = 0.0
    """exponent of the candidates' coloured noise along the horizon (power ~ 1 / f ** beta); 0: white noise, as CEM"""
    population_decay: float = 1.0
    """iteration i samples candidates / population_decay ** i sequences (at least 2 * top_k); 1: all iterations alike"""
    keep_elites: float = 0.0
    """fraction of the top_k elites carried into the next iteration and, shifted, into the next decision"""
    warm_start: bool = False
    """start each decision from the previous one's mean plan shifted by one step"""
    execute: str = "mean"
    """which plan's first action is taken: mean (CEM) or best (the best-scoring sequence seen)"""
    weighting: str = "topk"
    """how the distribution is refitted: topk (CEM's elites, equal weights) or mppi (exponential weights on all)"""
    temperature: float = 0.5
    """MPPI's temperature, in units of the candidates' return standard deviation (weighting=mppi only)"""


#: the planner presets: CEM's (planet, cpu, tiny) and the sample-efficient ones (icem, icem-small, mppi), from
#: trainers/fit/presets.py. Model steps per decision (:func:`model_steps`): planet 120,000; cpu 15,000; icem 2,916 (1/5.1
#: of cpu); icem-small 1,548 (about 1/10); mppi 3,000. Real returns on cartpole-swingup: results/planner.md.
ICEM_PRESETS: dict[str, ICEMConfig] = {name: ICEMConfig(**p) for name, p in presets.ICEM_PRESETS.items()}
PLANNER_PRESETS: dict[str, CEMConfig] = {**CEM_PRESETS, **ICEM_PRESETS}


def powerlaw_noise(rng: np.random.Generator, beta: float, shape: tuple[int, ...]) -> np.ndarray:
    """Gaussian noise of unit variance whose power spectrum along axis 1 (the horizon) falls as ``1 / f ** beta``.

    The spectrum is shaped in the frequency domain and transformed back (Timmer & Koenig 1995, as the
    ``colorednoise`` package that iCEM uses): frequencies below ``1 / horizon`` are held at ``1 / horizon``. Unlike
    ``colorednoise``, the normalisation counts the constant term, so the variance is 1 also for short horizons.
    """
    n, h, rest = shape[0], shape[1], tuple(shape[2:])
    f = np.fft.rfftfreq(h)
    scale = np.maximum(f, 1.0 / h) ** (-beta / 2.0)
    # the standard deviation of each time step this spectrum gives (DC and an even horizon's Nyquist term are real,
    # with their magnitude fixed below), to normalise to unit variance at every horizon length
    nyquist = h % 2 == 0
    power = 2 * scale[0] ** 2 + 4 * np.sum(scale[1 : len(f) - nyquist] ** 2) + 2 * nyquist * scale[-1] ** 2
    sigma = np.sqrt(power) / h
    spec_shape = (n, *rest, len(f))
    real = rng.standard_normal(spec_shape) * scale
    imag = rng.standard_normal(spec_shape) * scale
    if nyquist:  # the Nyquist component of a real signal is real
        imag[..., -1] = 0.0
        real[..., -1] *= np.sqrt(2.0)
    imag[..., 0] = 0.0
    real[..., 0] *= np.sqrt(2.0)
    noise = np.fft.irfft(real + 1j * imag, n=h, axis=-1) / sigma
    return np.moveaxis(noise, -1, 1)


def population(cfg: CEMConfig, iteration: int) -> int:
    """Candidates sampled at ``iteration``: ``candidates / population_decay ** iteration``, at least ``2 * top_k`` (and
    never more than ``candidates``)."""
    decay = getattr(cfg, "population_decay", 1.0)
    return max(int(cfg.candidates * decay ** -iteration), min(2 * cfg.top_k, cfg.candidates))


def kept(cfg: CEMConfig) -> int:
    """How many elites go on to the next iteration and decision."""
    return int(round(getattr(cfg, "keep_elites", 0.0) * cfg.top_k))


def model_steps(cfg: CEMConfig) -> int:
    """Model steps one decision rolls (once kept elites exist): horizon x sequences scored, summed over iterations."""
    extra = kept(cfg) * cfg.iterations + (getattr(cfg, "execute", "mean") == "best")
    return cfg.horizon * (sum(population(cfg, i) for i in range(cfg.iterations)) + extra)


def shift(plans: np.ndarray, fill: np.ndarray, axis: int = 0) -> np.ndarray:
    """``plans`` one step on along the horizon ``axis``: the first step dropped, ``fill`` (broadcast) as the new last."""
    last = np.broadcast_to(fill, (*plans.shape[:axis], 1, *plans.shape[axis + 1 :]))
    return np.concatenate([np.take(plans, range(1, plans.shape[axis]), axis=axis), last.astype(plans.dtype)], axis=axis)


def mppi_weights(scores: np.ndarray, temperature: float) -> np.ndarray:
    """MPPI's weights: ``exp((R - max R) / (temperature * std R))``, normalised (equal weights when all R are equal)."""
    spread = float(scores.std())
    if spread == 0.0:
        return np.full(len(scores), 1.0 / len(scores))
    w = np.exp((scores - scores.max()) / (temperature * spread))
    return w / w.sum()


class ICEMPlanner(CEMPlanner):
    """The CEM planner with iCEM's and MPPI's options (:class:`ICEMConfig`); all off, it is the CEM planner."""

    def __init__(self, model, config: ICEMConfig | str = "icem", seed: int = 0, device: str | None = None):
        cfg = PLANNER_PRESETS[config] if isinstance(config, str) else config
        cfg = cfg if isinstance(cfg, ICEMConfig) else ICEMConfig(**cfg.__dict__)
        _check(cfg, model.action_space)
        super().__init__(model, cfg, seed=seed, device=device)
        self.model_steps = 0
        """model steps rolled so far (horizon x sequences scored)"""
        self.begin_episode()

    def begin_episode(self, seed: int | None = None) -> None:
        """Forget the previous decision's plan and elites (the evaluation loops call this at every reset)."""
        self.last_mean: np.ndarray | None = None
        self.last_elites: np.ndarray | None = None

    # -- sampling ----------------------------------------------------------------------------------
    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """The distribution a decision starts from: the centre, or the previous mean plan shifted (warm start)."""
        mean, std = self._init_dist()
        if self.cfg.warm_start and self.last_mean is not None:
            mean = shift(self.last_mean, mean[-1])
        return mean, std

    def _sample(self, mean: np.ndarray, std: np.ndarray, n: int | None = None) -> np.ndarray:
        if self.cfg.noise_beta == 0.0 or isinstance(self.space, gym.spaces.Discrete):
            return super()._sample(mean, std, n)
        noise = powerlaw_noise(self.rng, self.cfg.noise_beta, (n or self.cfg.candidates, self.cfg.horizon, *self.space.shape))
        return np.clip(mean[None] + std[None] * noise, self.space.low, self.space.high).astype(self.space.dtype)

    def _refit_weighted(self, plans: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = mppi_weights(scores, self.cfg.temperature)
        if isinstance(self.space, gym.spaces.Discrete):
            return np.stack([np.tensordot(w, (plans - self.space.start == k), axes=1) for k in range(int(self.space.n))], -1), np.zeros(0)
        x = plans.astype(np.float64)
        mean = np.tensordot(w, x, axes=1)
        std = np.sqrt(np.tensordot(w, (x - mean) ** 2, axes=1))
        return mean, np.maximum(std, self.cfg.min_std)

    # -- planning ----------------------------------------------------------------------------------
    def returns(self, state: dict[str, torch.Tensor], plans: np.ndarray) -> np.ndarray:
        self.model_steps += plans.shape[0] * plans.shape[1]
        return super().returns(state, plans)

    def plan(self, state: dict[str, torch.Tensor]) -> np.ndarray:
        """The first action of the refined plan (mean or best) from ``state`` (a model state of batch 1)."""
        cfg, n_keep = self.cfg, kept(self.cfg)
        mean, std = self.start()
        centre = self._as_plan(self._init_dist()[0])[-1]  # the last step of a shifted elite
        carry = None if self.last_elites is None else shift(self.last_elites, centre, axis=1)
        best, best_score = None, -np.inf
        for i in range(cfg.iterations):
            plans = self._sample(mean, std, population(cfg, i))
            if carry is not None and len(carry):
                plans = np.concatenate([plans, carry.astype(plans.dtype)])
            if cfg.execute == "best" and i == cfg.iterations - 1:
                plans = np.concatenate([plans, self._as_plan(mean)[None]])
            scores = self.returns(state, plans)
            order = np.argsort(-scores, kind="stable")
            elites = plans[order[: cfg.top_k]]
            if scores[order[0]] > best_score:
                best, best_score = plans[order[0]], scores[order[0]]
            mean, std = self._refit_weighted(plans, scores) if cfg.weighting == "mppi" else self._refit(elites)
            carry = elites[:n_keep] if n_keep else None
        self.last_mean, self.last_elites = mean, carry
        if cfg.execute == "best":
            return np.asarray(best[0], dtype=self.space.dtype)
        if isinstance(self.space, gym.spaces.Discrete):
            return np.asarray(self.space.start + int(np.argmax(mean[0])), dtype=self.space.dtype)
        return mean[0].astype(self.space.dtype)

    def _as_plan(self, mean: np.ndarray) -> np.ndarray:
        """The distribution's mean as an action sequence (the most likely action per step for Discrete)."""
        if isinstance(self.space, gym.spaces.Discrete):
            return (self.space.start + np.argmax(mean, -1)).astype(self.space.dtype)
        return np.clip(mean, self.space.low, self.space.high).astype(self.space.dtype)


def _check(cfg: ICEMConfig, space: gym.Space) -> None:
    if cfg.execute not in EXECUTE:
        raise ValueError(f"execute must be one of {EXECUTE}, got {cfg.execute!r}.")
    if cfg.weighting not in WEIGHTING:
        raise ValueError(f"weighting must be one of {WEIGHTING}, got {cfg.weighting!r}.")
    if cfg.population_decay < 1.0:
        raise ValueError(f"population_decay must be >= 1 (the population shrinks or stays), got {cfg.population_decay}.")
    if not 0.0 <= cfg.keep_elites <= 1.0:
        raise ValueError(f"keep_elites is a fraction of top_k in [0, 1], got {cfg.keep_elites}.")
    if cfg.temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {cfg.temperature}.")
    if cfg.noise_beta != 0.0 and isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"noise_beta (coloured noise) needs a Box action space, got {space}; use noise_beta=0 for Discrete actions.")


def make_planner(model, config: CEMConfig | str = "cpu", seed: int = 0, device: str | None = None) -> CEMPlanner:
    """The planner of a preset name (:data:`PLANNER_PRESETS`) or config: CEM's own class for CEM's configs, so the
    ``cem`` presets plan exactly as before; :class:`ICEMPlanner` for an :class:`ICEMConfig`."""
    if isinstance(config, str):
        if config not in PLANNER_PRESETS:
            raise ValueError(f"Unknown planner preset {config!r}; choose from {sorted(PLANNER_PRESETS)}.")
        config = PLANNER_PRESETS[config]
    return ICEMPlanner(model, config, seed, device) if isinstance(config, ICEMConfig) else CEMPlanner(model, config, seed, device)
