"""A model is a directory: ``model.safetensors`` (weights) + ``model.json`` (the model card).

Checkpoints are data, not code: the card names the family and its constructor arguments, the
weights are plain tensors, and loading rebuilds ``cls(**params)`` and checks every tensor's name and
shape against the card. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gym_dream import __version__
from gym_dream.versions import satisfies
from gym_dream.error import ModelFormatError, ModelMismatch
from gym_dream.models import FAMILIES, WorldModel
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict, space_to_dict

FORMAT = "gym-dream-model"
FORMAT_VERSION = 1
CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"

#: the card fields every model has; the rest (data, training, scores, ...) is free-form documentation
REQUIRED_FIELDS = ("format", "format_version", "family", "params", "env", "observation_space", "action_space", "preprocessing")


def _umask_mode() -> int:
    """rw-r--r-- less the process umask (mkstemp would make files private to the owner)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a torn one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model: WorldModel, directory: str | os.PathLike, card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write ``model`` to ``directory``. ``card`` adds documentation fields (env, data, scores...).

    ``card["env"]`` should be ``{"id": real_env_id, "kwargs": {...}, "max_episode_steps": n}``.
    ``half`` stores floating-point weights as float16 (they load back as float32).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    full: dict[str, Any] = dict(card or {})
    full.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        gym_dream_version=__version__,
        family=model.family,
        params=model.hyperparameters(),
        observation_space=space_to_dict(model.observation_space),
        action_space=space_to_dict(model.action_space),
        preprocessing=model.preprocessing.to_dict(),
    )
    full.setdefault("env", {})
    full["weights"] = {"dtype": "float16" if half else "float32", "file": WEIGHTS_FILE}
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        if half and t.is_floating_point():
            t = t.half()
        tensors[name] = t
    # weights first, card last: a directory with a card always has its weights
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        os.replace(tmp, directory / WEIGHTS_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    atomic_write_bytes(directory / CARD_FILE, (json.dumps(full, indent=2, sort_keys=False) + "\n").encode())
    return directory


def read_card(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model card (format and version) without touching the weights."""
    directory = Path(directory)
    path = directory / CARD_FILE
    if not path.is_file():
        raise ModelFormatError(f"{directory} is not a model directory: {CARD_FILE} is missing.")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{path} is not valid JSON ({e}); the model card is corrupted.") from e
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a gym-dream model card (expected \"format\": \"{FORMAT}\").")
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has model format version {version!r}, but gym-dream {__version__} reads format version "
            f"{FORMAT_VERSION}. Install a gym-dream release that reads format {version!r}, or re-export the model."
        )
    needs = card.get("requires_gym_dream")
    if needs is not None and not satisfies(__version__, str(needs)):
        raise ModelFormatError(
            f"{path} is a model package made for gym-dream {needs} (model format version {version}), but gym-dream "
            f"{__version__} is installed (it reads format version {FORMAT_VERSION}). "
            f"Install a matching release (pip install 'gym-dream{needs}'), or re-export the model with this one."
        )
    missing = [f for f in REQUIRED_FIELDS if f not in card]
    if missing:
        raise ModelFormatError(f"{path} lacks the required fields {missing}.")
    if card["family"] not in FAMILIES:
        raise ModelFormatError(f"{path} names the unknown model family {card['family']!r}; known: {sorted(FAMILIES)}.")
    return card


def build_model(card: dict[str, Any]) -> WorldModel:
    """An untrained model with the architecture a card describes."""
    cls = FAMILIES[card["family"]]
    try:
        return cls(
            observation_space=space_from_dict(card["observation_space"]),
            action_space=space_from_dict(card["action_space"]),
            preprocessing=Preprocessing.from_dict(card["preprocessing"]),
            **card["params"],
        )
    except (TypeError, ValueError) as e:
        raise ModelMismatch(f"The model card's parameters do not build a {card['family']} model: {e}") from e


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> WorldModel:
    """Load a model directory, checking the card against the weights; returns an eval-mode model."""
    directory = Path(directory)
    card = read_card(directory)
    model = build_model(card)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelFormatError(f"{directory} has a card but no {WEIGHTS_FILE}.")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFormatError(
            f"{weights_path} cannot be read ({e}); the file is truncated or corrupted. Re-copy or re-export the model."
        ) from e
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(
                "shape mismatches "
                + ", ".join(f"{k}: card {tuple(expected[k].shape)} vs weights {tuple(tensors[k].shape)}" for k in wrong[:5])
            )
        raise ModelMismatch(f"{directory}: the card does not match the weights ({'; '.join(parts)}).")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    model.card = card
    model.source = str(directory)
    return model.to(device).eval().requires_grad_(False)
