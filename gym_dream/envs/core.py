"""What DreamEnv and DreamVectorEnv share: argument checks, spaces, action conversion, seeding."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from gym_dream.catalogue import by_real_id
from gym_dream.error import ModelMismatch, ModelNotFound
from gym_dream.models import State, WorldModel
from gym_dream.envs.precision import check_precision
from gym_dream.envs.uncertainty import check_member, check_uncertainty
from gym_dream.spaces import space_from_dict, spaces_equal
from gym_dream.store import resolve_model

OBS_TYPES = ("latent", "pixels")

def check_tau(tau: Any, model: WorldModel | None = None, ranges: bool = True) -> float | tuple[float, float]:
    """A temperature > 0, or (``ranges``: where each episode can have its own, the dream envs) a range ``(low, high)``
    of them (each episode draws its own, uniformly: see :func:`draw_taus`). ``None``: the model card's ``dream_env.tau``
    (the temperature its author set for the dream, e.g. by ``gym-dream calibrate``: where random play lasts as long as
    in the real env), else 1.0. A temperature above :data:`MAX_TAU` (100) is refused with ``ValueError`` (an error, not
    a warning: far above any trained range the dream is noise, and near float32's limit inf/NaN), as is one that is 0
    in float32."""
    if tau is None:
        tau = (model.card.get("dream_env") or {}).get("tau", 1.0) if model is not None else 1.0
        try:
            return check_tau(tau, ranges=ranges)
        except (TypeError, ValueError) as e:
            raise ValueError(f"The model card's dream_env.tau (the default temperature) is invalid: {e} "
                             "Fix the card (gym-dream calibrate MODEL --write MODEL_DIR rewrites it) or pass tau=...") from None
    if isinstance(tau, (list, tuple)) or (isinstance(tau, np.ndarray) and tau.ndim == 1):
        if not ranges:
            raise ValueError(f"This takes one temperature, got the range {tau!r}: pass one tau (a range is for dream envs, "
                             "where each episode draws its own).")
        if len(tau) != 2:
            raise ValueError(f"A tau range is two temperatures (low, high), e.g. tau=(1.0, 1.7); got {tau!r}.")
        low, high = (_one_tau(t) for t in tau)
        if low > high:
            raise ValueError(f"A tau range is (low, high) with low <= high, got {tau!r}: write tau=({high}, {low}).")
        return low, high
    return _one_tau(tau)


def tau_name(tau: float | tuple[float, float]) -> str:
    """How a temperature or a range of them is written wherever it names something (a report's dream scores, a run):
    ``1.15``, or ``1.0:1.5`` for the range ``(1.0, 1.5)``, as the command line takes it (``--tau 1.0:1.5``)."""
    tau = check_tau(tau)
    return f"{tau[0]}:{tau[1]}" if isinstance(tau, tuple) else str(tau)


#: the highest temperature a dream takes: tau scales the mixture's (or prior's) variance and flattens its component
#: choice, so far above the trained range (1.0; calibrated dreams use 1.0-2.0) every step is noise, and at float32's
#: limit the dream is inf/NaN. A larger tau is an error (ValueError), not a warning.
MAX_TAU = 100.0


def _one_tau(tau: Any) -> float:
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a positive number (e.g. tau=1.15) or a range of two (e.g. tau=(1.0, 1.7)), "
                        f"got {tau!r} of type {type(tau).__name__}.")
    tau = float(tau)
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a finite number > 0 (1.0 samples the model as trained; try 0.5-1.5), got {tau}.")
    if tau > MAX_TAU:
        raise ValueError(f"tau={tau:g} is far above any temperature a dream is sampled at (1.0 is the model as trained; "
                         f"calibrated dreams use 1.0-2.0): at most {MAX_TAU:g}. Pass a tau in 0.5-2.0.")
    if float(np.float32(tau)) <= 0:
        raise ValueError(f"tau={tau:g} is 0 in float32, the dream's arithmetic: pass a larger one (1.0 samples the model as trained; try 0.5-1.5).")
    return tau


def draw_taus(tau: float | tuple[float, float], n: int, generator: torch.Generator | None,
              device: torch.device | str) -> torch.Tensor | None:
    """The temperatures of ``n`` starting episodes under a tau range ``(low, high)``: uniform on it, drawn with the
    env's tau generator (its own stream, so a range (t, t) dreams what tau=t dreams); None for a single tau."""
    if not isinstance(tau, tuple):
        return None
    low, high = tau
    return low + (high - low) * torch.rand(n, generator=generator, device=device, dtype=torch.float32)


def check_obs_type(obs_type: Any, model: WorldModel) -> str:
    if obs_type not in OBS_TYPES:
        raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}.")
    if obs_type == "pixels" and model.preprocessing.kind != "image":
        raise ValueError(
            "obs_type='pixels' needs a pixel model; this model sees vector observations. Use obs_type='latent'."
        )
    return obs_type


def check_model_fits(model: WorldModel, real_env_id: str | None) -> None:
    """A model for a registered id must have been trained on that id's real env, with its spaces."""
    if real_env_id is None:
        return
    card_env = (model.card.get("env") or {}).get("id")
    if card_env is not None and card_env != real_env_id:
        raise ModelMismatch(
            f"This dream id expects a model of {real_env_id}, but the model was trained on {card_env}. "
            f"Pass a {real_env_id} model, or use gym_dream.DreamEnv(model=...) directly for other envs."
        )
    known = by_real_id(real_env_id)
    if known is None:
        return
    if known.action_space is not None:
        expected = space_from_dict(known.action_space)
        if not spaces_equal(model.action_space, expected):
            raise ModelMismatch(f"{real_env_id} has action space {expected}, but the model's action space is {model.action_space}.")
    shape = tuple(getattr(model.observation_space, "shape", ()) or ())
    if known.observation_shape is not None and shape != known.observation_shape:
        raise ModelMismatch(
            f"{real_env_id} has observations of shape {known.observation_shape}, but the model was built for {shape}."
        )


def load_env_model(model: Any, default_model: str | None, env_name: str, real_env_id: str | None, device: str) -> WorldModel:
    """Resolve ``model`` (or the id's default) and check it fits the id."""
    if model is None:
        if default_model is None:
            raise ValueError("Pass model= (a model directory, a model name or a WorldModel).")
        try:
            model = resolve_model(default_model, device=device)
        except ModelNotFound as e:
            raise ModelNotFound(
                f"{env_name} has no default model installed yet (looked for a model named {default_model!r}). "
                f"Train one with `gym-dream collect --env-id {real_env_id} --out data/{default_model}` and "
                f"`gym-dream fit data/{default_model} --out models/{default_model}`, then pass "
                f"model='models/{default_model}' (or copy it to $GYM_DREAM_HOME/models/{default_model}). "
                f"Details: {e}"
            ) from None
    else:
        model = resolve_model(model, device=device)
    check_model_fits(model, real_env_id)
    return model


def observation_space(model: WorldModel, obs_type: str) -> spaces.Box:
    if obs_type == "pixels":
        h, w = model.preprocessing.size
        return spaces.Box(0, 255, (h, w, 3), np.uint8)
    return spaces.Box(-np.inf, np.inf, (model.feature_dim,), np.float32)


def observation(model: WorldModel, state: State, obs_type: str) -> torch.Tensor:
    return model.features(state) if obs_type == "latent" else model.decode(state)


TERMINATION_MODES = ("threshold", "sample")


def check_termination(termination: str | None, model: WorldModel) -> str:
    """``"threshold"``: an episode ends when the termination head's probability exceeds 0.5;
    ``"sample"``: it ends with that probability at each step (a hazard rate: right when death is a
    rare event, e.g. 1 step in 200, whose probability never crosses 0.5). ``None``: the model card's
    ``dream_env.termination``, else ``"threshold"``."""
    if termination is None:
        termination = (model.card.get("dream_env") or {}).get("termination", "threshold")
    if termination not in TERMINATION_MODES:
        raise ValueError(f"termination must be one of {TERMINATION_MODES}, got {termination!r}.")
    return termination


def terminations(p_end: torch.Tensor, threshold_flags: torch.Tensor, mode: str, generator: torch.Generator | None) -> torch.Tensor:
    if mode == "threshold":
        return threshold_flags
    return torch.rand(p_end.shape, generator=generator, device=p_end.device) < p_end


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy copy that never aliases a model buffer."""
    return t.detach().to("cpu", copy=True).numpy()


def make_generators(np_random: np.random.Generator, device: torch.device | str,
                    tau: float | tuple[float, float]) -> tuple[torch.Generator, torch.Generator | None]:
    """A dream env's generators, derived from its numpy generator (same seed, same dream): the dream's, and under a tau
    range a second one for the episodes' temperatures (its own stream: a range (t, t) dreams exactly what tau=t dreams)."""
    dream = make_generator(np_random, device)
    return dream, make_generator(np_random, device) if isinstance(tau, tuple) else None


def make_generator(np_random: np.random.Generator, device: torch.device | str) -> torch.Generator:
    """A torch generator derived from the env's own numpy generator (same seed, same dream)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np_random.integers(0, 2**63 - 1)))
    return g


def actions_to_tensor(actions: Any, space: spaces.Space, batch: int | None, device: torch.device) -> torch.Tensor:
    """Validate actions against the single-env ``space`` and convert them to a tensor.

    ``batch=None`` means one action (shape of the space); otherwise ``batch`` stacked actions.
    """
    where = "action" if batch is None else f"actions (num_envs={batch})"
    arr = np.asarray(actions)
    if isinstance(space, spaces.Discrete):
        want = () if batch is None else (batch,)
        if arr.shape != want:
            raise ValueError(f"Expected {where} of shape {want} for {space}, got shape {arr.shape}.")
        if not (np.issubdtype(arr.dtype, np.integer) or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
            raise TypeError(f"Expected integer {where} for {space}, got dtype {arr.dtype}.")
        lo, hi = int(space.start), int(space.start + space.n - 1)
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{where.capitalize()} out of range for {space}: values must lie in [{lo}, {hi}], got {arr.reshape(-1)[:8]}.")
        return torch.as_tensor(arr.astype(np.int64).reshape(-1), device=device)
    want = tuple(space.shape) if batch is None else (batch, *space.shape)
    if arr.shape != want:
        raise ValueError(f"Expected {where} of shape {want} for {space}, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"Expected real-valued {where} for {space}, got dtype {arr.dtype}.")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where.capitalize()} contain NaN or inf.")
    tol = 1e-5
    if np.any(arr < space.low - tol) or np.any(arr > space.high + tol):
        raise ValueError(
            f"{where.capitalize()} outside the action space {space} (low={space.low.tolist()}, high={space.high.tolist()}). "
            "Clip actions to the space before stepping."
        )
    return torch.as_tensor(np.ascontiguousarray(arr).reshape(1 if batch is None else batch, -1), device=device)


def action_for_env(action: torch.Tensor, space: spaces.Space) -> Any:
    """A checked action (from :func:`actions_to_tensor`, batch 1) as the real env takes it: an ``int``
    for Discrete, an array of the space's dtype and shape for Box (so ``1.0`` for Discrete(2) reaches
    the real env as ``1``, which its own check accepts)."""
    if isinstance(space, spaces.Discrete):
        return int(action.reshape(-1)[0])
    return to_numpy(action).reshape(space.shape).astype(space.dtype, copy=False)


def check_options(options: Any) -> dict[str, Any]:
    """``reset(options=...)``: None or a dict."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"reset(options=...) must be None or a dict (e.g. {{'state': state}}), got {type(options).__name__}.")
    return dict(options)


def check_reset_state(model: WorldModel, state: Any, batches: tuple[int, ...], device: torch.device) -> State:
    """Validate ``reset(options={"state": state})`` and return a copy on ``device``.

    The state must be what the model's own states are: a dict with exactly the keys of
    ``model.initial_state`` (e.g. ``z``, ``h``, ``c`` for an MDN-RNN), each a tensor (or numpy array)
    of the same trailing shape and kind of number, one batch size among ``batches`` for all keys,
    and only values finite in the model's dtype (float32: a float64 1e300 is refused). Used by DreamEnv (batch 1) and
    DreamVectorEnv (1 or num_envs)."""
    where = 'options["state"]'
    how = "pass a state the model made (env.unwrapped.state, model.initial_state(n), or a wrapper's .state)"
    if not isinstance(state, Mapping):
        raise TypeError(f"{where} must be a dict of tensors; {how}. Got {type(state).__name__}.")
    with torch.inference_mode():
        template = model.initial_state(1, torch.Generator(device=model.device).manual_seed(0))
    missing, unexpected = sorted(set(template) - set(state)), sorted(map(str, set(state) - set(template)))
    if missing or unexpected:
        raise ValueError(f"{where} has the keys {sorted(map(str, state))}, but this model's states have {sorted(template)}"
                         f"{f' (missing {missing})' if missing else ''}{f' (unexpected {unexpected})' if unexpected else ''}; {how}.")
    out: State = {}
    sizes = set()
    for key, want in template.items():
        v = state[key]
        if isinstance(v, np.ndarray) and (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_) and not np.iscomplexobj(v):
            v = torch.from_numpy(np.array(v))
        if not torch.is_tensor(v):
            raise TypeError(f"{where}[{key!r}] must be a torch tensor, got {type(v).__name__}; {how}.")
        if v.is_floating_point() != want.is_floating_point() or v.is_complex() or (not want.is_floating_point() and v.dtype != want.dtype):
            raise TypeError(f"{where}[{key!r}] has dtype {v.dtype}, but the model's states are {want.dtype}; {how}.")
        if v.dim() != want.dim() or tuple(v.shape[1:]) != tuple(want.shape[1:]):
            raise ValueError(f"{where}[{key!r}] has shape {tuple(v.shape)}, but the model's states are (batch, "
                             f"{', '.join(map(str, want.shape[1:]))}); {how}.")
        v = v.detach().to(device=device, dtype=want.dtype, copy=True)
        # checked after the cast to the model's dtype: a float64 1e300 is finite, but inf in float32
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{where}[{key!r}] contains NaN or inf, or values beyond {want.dtype}'s range "
                             f"(+-{torch.finfo(want.dtype).max:.3g}); {how}.")
        sizes.add(int(v.shape[0]))
        out[key] = v
    if len(sizes) != 1 or next(iter(sizes)) not in batches:
        raise ValueError(f"{where} has batch size(s) {sorted(sizes)}; expected {' or '.join(map(str, batches))} (the same for every key).")
    return out


def vector_frame(values: np.ndarray, size: int = 64) -> np.ndarray:
    """A simple bar-chart frame of a standardised vector, for rendering vector-observation dreams."""
    img = np.full((size, size, 3), 255, np.uint8)
    n = max(len(values), 1)
    width = max(size // n, 1)
    mid = size // 2
    for i, v in enumerate(values):
        height = int(np.clip(v / 3.0, -1.0, 1.0) * (mid - 1))
        top, bottom = (mid - height, mid) if height >= 0 else (mid, mid - height)
        img[top:bottom + 1, i * width : (i + 1) * width - 1] = (40, 90, 200) if v >= 0 else (200, 70, 40)
    img[mid, :] = 0
    return img


@dataclass(frozen=True)
class DreamArgs:
    """The arguments a dream env (single or vector) takes beyond its batch, checked against the model."""

    model: WorldModel
    tau: float | tuple[float, float]
    obs_type: str
    termination: str
    member: str
    precision: str
    uncertainty_penalty: float
    uncertainty_limit: float | None
    uncertainty_halt_reward: float | None
    render_mode: str | None

    def apply_to(self, env: Any) -> None:
        """Set each checked argument as the env's attribute of the same name (``env.tau``, ``env.model``, ...)."""
        for f in fields(self):
            setattr(env, f.name, getattr(self, f.name))


def check_dream_args(*, model: Any, default_model: str | None, real_env_id: str | None, device: str, tau: Any, obs_type: Any,
                     termination: Any, member: Any, precision: Any, uncertainty_penalty: Any, uncertainty_limit: Any,
                     uncertainty_halt_reward: Any, render_mode: Any, render_modes: list[str]) -> DreamArgs:
    """Check every argument DreamEnv and DreamVectorEnv share, loading the model (a bad tau fails before it loads)."""
    check_tau(tau)
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be None or one of {render_modes}, got {render_mode!r}.")
    loaded = load_env_model(model, default_model, "This dream env", real_env_id, device)
    penalty, limit, halt_reward = check_uncertainty(loaded, uncertainty_penalty, uncertainty_limit, uncertainty_halt_reward)
    return DreamArgs(model=loaded, tau=check_tau(tau, loaded), obs_type=check_obs_type(obs_type, loaded),
                     termination=check_termination(termination, loaded), member=check_member(member, loaded),
                     precision=check_precision(precision, loaded), uncertainty_penalty=penalty, uncertainty_limit=limit,
                     uncertainty_halt_reward=halt_reward, render_mode=render_mode)
