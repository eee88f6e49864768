"""``gym-dream fit``: the options (:class:`FitConfig`) and the dispatch by family (:data:`FITTERS`). Each family's fitter
is a module of its own: the VAE + MDN-RNN (:mod:`trainers.fit.mdnrnn`), PlaNet's RSSM (:mod:`trainers.fit.rssm`),
DreamerV3's world model (:mod:`trainers.fit.dreamer`, the one fitted when no family is named: :data:`DEFAULT_FAMILY`); a new
family adds itself with :func:`register_fitter`.

Out-of-range arguments are refused when the :class:`FitConfig` is made (``trainers.fit.presets.FIT_RANGES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from trainers.fit.start_bank import STARTS
from trainers.fit.presets import DREAMER_ONLY, FIT_RANGES, MDNRNN_ONLY, MDNRNN_PRESETS, RSSM_ONLY, VECTOR_DEFAULTS, check_ranges, preset

#: network sizes and budgets (trainers/fit/presets.py; "tiny" is the one tiny preset)
PRESETS = MDNRNN_PRESETS
#: the family ``gym-dream fit`` fits when none is named (so also a recipe's ``[fit]`` without a ``family``, and
#: ``gym-dream experiment --env-id``), chosen by measurement (results/any_env.md): PPO trained in the first dream of random
#: data scored 3.9 ± 116.8 on real LunarLander with dreamer (random -229, the MDN-RNN's dream -188) and 441.6 ± 114.3 on
#: CartPole
DEFAULT_FAMILY = "dreamer"
#: the built-in families' own options (None, 0 or, for members, 1 is "not given"): each refused for the families not named
#: here, with the family to pass instead; a family added with :func:`register_fitter` is refused none of them
OWNERS: dict[str, tuple[str, ...]] = {**{k: ("mdnrnn",) for k in MDNRNN_ONLY}, **{k: ("rssm", "dreamer") for k in RSSM_ONLY},
                                      **{k: ("dreamer",) for k in DREAMER_ONLY}, "overshooting": ("rssm",),
                                      "members": ("mdnrnn", "rssm")}


@dataclass(frozen=True)
class Fitter:
    """How ``gym-dream fit --family NAME`` fits a family: ``fit(cfg)`` writes ``cfg.out`` and returns its path; ``presets``
    are its named sizes and budgets (``--preset``; "default" at least)."""

    fit: Callable[[Any], Path]
    presets: dict[str, Any]


def _fit_mdnrnn(cfg) -> Path:
    from trainers.fit.mdnrnn import fit_mdnrnn

    return fit_mdnrnn(cfg)


def _fit_rssm(cfg) -> Path:
    from trainers.fit.rssm import fit_rssm

    return fit_rssm(cfg)


def _fit_dreamer(cfg) -> Path:
    from trainers.fit.dreamer import fit_dreamer

    return fit_dreamer(cfg)


#: family (as written in model cards) -> its fitter; a new family adds itself with :func:`register_fitter`
FITTERS: dict[str, Fitter] = {}


def register_fitter(family: str, fit: Callable[[Any], Path], presets: dict[str, Any]) -> None:
    """Make ``gym-dream fit --family <family>`` run ``fit(cfg)`` (a :class:`FitConfig`), with the ``presets`` it accepts.
    The family's model class is registered in the runtime with :func:`gym_dream.models.register_family`."""
    if not callable(fit) or "default" not in presets:
        raise ValueError(f"register_fitter({family!r}): fit must be callable and presets must name a 'default' preset.")
    FITTERS[family] = Fitter(fit, dict(presets))


def _register_builtin_fitters() -> None:
    from trainers.fit.presets import DREAMER_PRESETS, RSSM_PRESETS

    register_fitter("mdnrnn", _fit_mdnrnn, PRESETS)
    register_fitter("rssm", _fit_rssm, {"default": None, **RSSM_PRESETS})
    register_fitter("dreamer", _fit_dreamer, DREAMER_PRESETS)


@dataclass
class FitConfig:
    data: str = "data/cartpole"
    """dataset folder written by `gym-dream collect` (ignored with minari)"""
    minari: str | None = None
    """fit on this local Minari dataset instead (an id such as "cartpole/expert-v0", read from MINARI_DATASETS_PATH; needs
    gym-dream[minari]): converted once into gym-dream shards in <out>.minari/ (reused on re-runs), its real env taken from the
    dataset's env spec"""
    out: str = "models/cartpole"
    """model directory to write (model.json + model.safetensors)"""
    family: str = DEFAULT_FAMILY
    """world-model family: dreamer (the default: DreamerV3's world model, discrete latents, symlog, two-hot reward, KL
    balancing; one set of hyper-parameters for every env) | mdnrnn (VAE + MDN-RNN, World Models) | rssm (PlaNet's RSSM),
    from the same shards"""
    preset: str = "default"
    """network sizes and budgets: default | tiny (rssm also: cpu | planet; dreamer also: small; see trainers/fit/presets.py); fields below
    override it"""
    z_dim: int | None = None
    """mdnrnn: latent size of the VAE (pixel data; vector data uses the observation size)"""
    hidden: int | None = None
    """LSTM units (rssm: units of the MLPs around the GRU)"""
    mixtures: int | None = None
    """mdnrnn: Gaussians in the MDN"""
    head_hidden: int | None = None
    """mdnrnn: hidden units of the reward and termination heads"""
    residual: bool | None = None
    """mdnrnn: predict z_{t+1} - z_t (default: on for vector data, off for pixels)"""
    vae_epochs: int | None = None
    """mdnrnn: VAE passes over the training frames"""
    rnn_epochs: int | None = None
    """mdnrnn: MDN-RNN epochs (one epoch = windows covering the training steps once)"""
    seq_len: int | None = None
    """training window length (transitions)"""
    rnn_batch: int | None = None
    """windows per MDN-RNN batch"""
    vae_batch: int | None = None
    """mdnrnn: frames per VAE batch"""
    vae_frames: int | None = None
    """mdnrnn: frames per VAE epoch: a fresh random subset of the training frames each epoch (default: all).
    Consecutive frames are nearly identical, so on a CPU a subset per epoch buys coverage cheaply"""
    vae_channels: tuple[int, ...] | None = None
    """mdnrnn: conv channels of the VAE encoder (the decoder mirrors them)"""
    lr: float | None = None
    """Adam learning rate"""
    termination_weight: float | None = None
    """mdnrnn: weight of the termination (death) loss; rare deaths need more (World Models' Doom used 10)"""
    end_weight: float | None = None
    """mdnrnn: weight of each real end against each other step in the termination loss (BCE's pos_weight): the dream
    then ends wherever an end is at least 1 / (1 + end_weight) likely. For ends the frames barely show (CarRacing's
    exits from the playfield), which the head otherwise never predicts and the dream never punishes"""
    rnn_minutes: float | None = None
    """wall-time budget of this invocation's MDN-RNN (or RSSM) stage: stop after the epoch that passes it and
    write the model from the best epoch so far (re-running continues toward rnn_epochs)"""
    deter: int | None = None
    """rssm, dreamer: GRU units of the deterministic path"""
    stoch: int | None = None
    """rssm: size of the stochastic state; dreamer: number of categorical latent variables"""
    classes: int | None = None
    """dreamer: classes of each categorical latent variable"""
    updates: int | None = None
    """rssm, dreamer: updates in all (checkpointed every 100; asking for more continues)"""
    free_nats: float = 3.0
    """rssm: KL below this many nats is not penalised (dreamer: DreamerV3's 1 nat of free bits, fixed)"""
    overshooting: int = 0
    """rssm: latent overshooting distance D (0: off)"""
    grad_clip: float = 1000.0
    """rssm: gradient norm clip (dreamer: its preset's, fixed)"""
    val_fraction: float = 0.1
    """share of episodes held out"""
    bank_size: int = 1024
    """start latents kept for dream resets"""
    starts: str | None = None
    """dreamer: where dream episodes start: 'anywhere' (the default: filtered real states from every step of the
    training episodes, with a short dream horizon, as MBPO branches model rollouts) or 'first' (the real episodes'
    first observations, with the real env's horizon); see trainers/fit/start_bank.py"""
    dream_horizon: int | None = None
    """dreamer: the dream horizon the card sets (dream_env.max_episode_steps); default: 64 with --starts anywhere,
    the real env's with --starts first"""
    members: int = 1
    """mdnrnn, rssm: dynamics members (LSTM + MDN + heads) sharing the encoder, batched in one tensor dimension; each trains on
    its own shuffle of the same windows in one batched pass, and the card records their held-out disagreement
    (what the dream envs' uncertainty_penalty / uncertainty_limit use). 1: a single model"""
    dropout: float = 0.0
    """mdnrnn: with members > 1: 0 makes the members independent networks (an ensemble); p > 0 makes them fixed dropout
    masks (drop probability p) on the memory of one network, trained with a fresh mask per sequence"""
    max_episodes: int | None = None
    """use only the first N episodes of the dataset"""
    init: str | None = None
    """mdnrnn: a model directory (same sizes) whose weights the fit starts from: after a further collection round
    the grown dataset is refitted from the previous model in fewer epochs"""
    seed: int = 0
    """seed for splits, initialisation and batches"""
    device: str = "cpu"
    """torch device for training"""
    half: bool = False
    """store the weights as float16"""
    checkpoint_dir: str | None = None
    """where per-epoch checkpoints go (default: <out>.checkpoints)"""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)"""
    extra_card: dict[str, Any] = field(default_factory=dict)
    """extra fields merged into the model card"""

    def __post_init__(self):
        """Refuse out-of-range arguments now, before any work."""
        if self.family not in FITTERS:
            raise ValueError(f"fit --family must be one of {' | '.join(FITTERS)}, got {self.family!r}.")
        presets = FITTERS[self.family].presets
        if self.preset not in presets:
            raise ValueError(f"fit --preset {self.preset!r} is not a {self.family} preset; choose from {' | '.join(presets)}.")
        check_ranges(self, FIT_RANGES, "fit")
        if self.starts is not None and self.starts not in STARTS:
            raise ValueError(f"fit --starts must be one of {' | '.join(STARTS)}, got {self.starts!r}.")
        if self.family in ("mdnrnn", "rssm", "dreamer"):
            given = [k for k, families in OWNERS.items() if self.family not in families
                     and getattr(self, k) not in ((None, 0, 0.0, 1) if k == "members" else (None, 0, 0.0))]
            if given:
                flag, owner = f"--{given[0].replace('_', '-')}", OWNERS[given[0]]
                default = " (the default family)" if self.family == DEFAULT_FAMILY else ""
                raise ValueError(f"fit {flag} is an option of {' and '.join(owner)}, not of {self.family}{default}: pass "
                                 f"--family {owner[0]} (a recipe: family = \"{owner[0]}\" in its [fit]), or drop {flag}.")

    def resolved(self, image: bool) -> dict[str, Any]:
        p = preset(PRESETS, self.preset, "fit")
        if not image and self.preset == "default":
            p.update(VECTOR_DEFAULTS)
        for k in p:
            v = getattr(self, k, None)
            if v is not None:
                p[k] = v
        p["residual"] = (not image) if self.residual is None else self.residual
        return p


def fit(cfg: FitConfig) -> Path:
    """Fit ``cfg.family`` (its :data:`FITTERS` entry) on ``cfg.data`` (or ``cfg.minari``) and write the model directory;
    returns its path."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.minari:
        from dataclasses import replace

        from trainers.data.minari import minari_to_shards

        cfg = replace(cfg, data=str(minari_to_shards(cfg.minari, f"{cfg.out}.minari")), minari=None)
    return FITTERS[cfg.family].fit(cfg)


_register_builtin_fitters()
