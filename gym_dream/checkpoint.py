"""A model is a directory: ``model.safetensors`` (weights) + ``model.json`` (the model card).

Checkpoints are data, not code: the card names the family and its constructor arguments, the
weights are plain tensors, and loading rebuilds ``cls(**params)`` and checks every tensor's name and
shape against the card. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from gym_dream import __version__
from gym_dream.versions import satisfies
from gym_dream.error import DataFormatError, DeviceNotAvailable, ModelCardMismatch, ModelFormatError
from gym_dream.models import FAMILIES, WorldModel
from gym_dream.naming import check_real_env_id
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


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a file so that readers see the old content or the new, never a torn one.

    ``durable``: also flush it to the disk (fsync of the file and its directory), so a power loss
    keeps it; without, a killed process still leaves the old or the new file (the page cache
    survives), and the caller syncs later (:func:`os.sync`)."""
    atomic_write(path, lambda f: f.write(data), durable=durable)


def atomic_write(path: Path, write: Callable[[BinaryIO], Any], durable: bool = True) -> None:
    """:func:`atomic_write_bytes` for content too large to hold in memory at once: ``write(f)`` streams it into the
    open temporary file, which replaces ``path`` only once it is complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def atomic_write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None, durable: bool = True) -> None:
    """Write ``tensors`` as a safetensors file, atomically and following the umask like every other file gym-dream
    writes (safetensors' own ``save_file`` re-creates its file owner-only, 0600, which other users of a shared model
    directory, or an installed package, could not read)."""
    atomic_write_bytes(path, save_tensors(tensors, metadata=metadata), durable=durable)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (a power loss right after it keeps the new name)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    atomic_write_tensors(directory / WEIGHTS_FILE, tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    atomic_write_bytes(directory / CARD_FILE, (json.dumps(full, indent=2, sort_keys=False) + "\n").encode())
    return directory


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Read a JSON file that gym-dream wrote (``what`` says what it is, e.g. "CMA-ES controller card").

    A missing file raises ``FileNotFoundError``; a truncated or corrupted one raises
    :class:`~gym_dream.error.DataFormatError` naming the file and the fix, not a bare ``JSONDecodeError``.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"The {what} {path} does not exist.") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(
            f"{path} (the {what}) is not UTF-8 text ({e.reason} at byte {e.start}); it is corrupted. "
            f"Restore it from a copy, or move it aside and re-run the command that writes it."
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        what_happened = "is empty" if not text.strip() else f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        raise DataFormatError(
            f"{path} (the {what}) {what_happened}: the file is truncated or corrupted. "
            f"Restore it from a copy, or move it aside and re-run the command that writes it."
        ) from None


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(device: Any) -> torch.device:
    """A torch device this machine has, or a clear error (``device="cuda"`` without CUDA, a typo...)."""
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:1' or 'mps' ({e}).") from None
    else:
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', or a torch.device; got {type(device).__name__} {device!r}.")
    if dev.type not in _DEVICE_TYPES:
        raise DeviceNotAvailable(f"device={device!r}: dreams run on {', '.join(_DEVICE_TYPES)} devices; pass device='cpu'.")
    if dev.type == "cpu":
        return dev
    backend = getattr(torch, dev.type, None) if dev.type != "mps" else torch.backends.mps
    available = bool(backend is not None and backend.is_available())
    if not available:
        raise DeviceNotAvailable(
            f"device={device!r}, but this machine has no usable {dev.type} device "
            f"(torch {torch.__version__}, torch.{dev.type}.is_available() is False). Pass device='cpu', "
            f"or install a torch build with {dev.type} support on a machine that has one."
        )
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if dev.index is not None and dev.index >= count:
        raise DeviceNotAvailable(f"device={device!r}, but this machine has {count} {dev.type} device(s) (indices 0-{count - 1}).")
    return dev


def _check_space_field(path: Path, card: dict[str, Any], field: str) -> None:
    """A card's space must say what it is: a Discrete needs ``n``, a Box ``shape``, ``dtype``, ``low``, ``high``."""
    data = card[field]
    example = '{"type": "Discrete", "n": 2, "start": 0} or {"type": "Box", "shape": [4], "dtype": "float32", "low": "-inf", "high": "inf"}'
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: {field} must be a JSON object such as {example}, got {data!r}.")
    kind = data.get("type")
    needs = {"Discrete": ("n",), "Box": ("shape", "dtype", "low", "high")}.get(kind) if isinstance(kind, str) else None
    if needs is None:
        raise ModelFormatError(f"{path}: {field}.type must be 'Box' or 'Discrete', got {kind!r}.")
    missing = [k for k in needs if k not in data]
    if missing:
        raise ModelFormatError(f"{path}: {field} ({kind}) lacks {', '.join(missing)}; write it as in {example}.")
    if kind == "Discrete" and (isinstance(data["n"], bool) or not isinstance(data["n"], int) or data["n"] < 1):
        raise ModelFormatError(f"{path}: {field}.n must be an integer >= 1, got {data['n']!r}.")
    if kind == "Box":
        shape = data["shape"]
        if not isinstance(shape, list) or not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise ModelFormatError(f"{path}: {field}.shape must be a non-empty list of integers >= 1, got {shape!r}.")
    if kind == "Discrete" and data["n"] > 2**31 - 1:
        raise ModelFormatError(f"{path}: {field}.n = {data['n']} is too large (at most 2**31 - 1).")
    if kind == "Box" and math.prod(data["shape"]) > 2**31 - 1:
        raise ModelFormatError(f"{path}: {field}.shape {data['shape']} is too large.")
    try:
        space_from_dict(data)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise ModelFormatError(f"{path}: {field} does not describe a valid space ({e}).") from None


def read_card(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model card (format and version) without touching the weights."""
    directory = Path(directory)
    path = directory / CARD_FILE
    if not path.is_file():
        raise ModelFormatError(f"{directory} is not a model directory: {CARD_FILE} is missing.")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{path} is not valid JSON ({e}); the model card is corrupted. Re-copy or re-export the model.") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFormatError(f"{path} is not a gym-dream model card (expected \"format\": \"{FORMAT}\").")
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has model format version {version!r}, but gym-dream {__version__} reads format version "
            f"{FORMAT_VERSION}. Install a gym-dream release that reads format {version!r}, or re-export the model."
        )
    needs = card.get("requires_gym_dream")
    try:
        fits = needs is None or satisfies(__version__, str(needs))
    except ValueError as e:
        raise ModelFormatError(f"{path}: requires_gym_dream {needs!r} is not a version range ({e}); re-export the model.") from None
    if not fits:
        raise ModelFormatError(
            f"{path} is a model package made for gym-dream {needs} (model format version {version}), but gym-dream "
            f"{__version__} is installed (it reads format version {FORMAT_VERSION}). "
            f"Install a matching release (pip install 'gym-dream{needs}'), or re-export the model with this one."
        )
    missing = [f for f in REQUIRED_FIELDS if f not in card]
    if missing:
        raise ModelFormatError(f"{path} lacks the required fields {missing}.")
    if not isinstance(card["env"], dict):
        raise ModelFormatError(f"{path}: env must be a JSON object such as {{\"id\": \"CartPole-v1\"}}, got {card['env']!r:.100}.")
    if card["env"].get("id") is not None:  # gym.make of a 'module:Name-v0' id would import (run) that module
        check_real_env_id(card["env"]["id"], f"{path}: env.id", ModelFormatError)
    if not isinstance(card["family"], str) or card["family"] not in FAMILIES:
        raise ModelFormatError(f"{path} names the unknown model family {card['family']!r}; known: {sorted(FAMILIES)}.")
    if not isinstance(card["params"], dict):
        raise ModelFormatError(f"{path}: params must be a JSON object of the family's constructor arguments.")
    if not isinstance(card["preprocessing"], dict):
        raise ModelFormatError(f"{path}: preprocessing must be a JSON object (e.g. {{\"kind\": \"vector\"}}).")
    for field in ("observation_space", "action_space"):
        _check_space_field(path, card, field)
    bank = card["params"].get("bank_size")
    if bank is not None and (isinstance(bank, bool) or not isinstance(bank, int) or bank < 1):
        raise ModelFormatError(
            f"{path}: the start-state bank is empty (params.bank_size = {bank!r}), so the dream could never reset. "
            f"Refit the model with --bank-size >= 1 (e.g. 64)."
        )
    _check_sections(path, card)
    return card


def _check_sections(path: Path, card: dict[str, Any]) -> None:
    """The optional sections the dream envs read (``dream_env``: its defaults; ``uncertainty``: the members' held-out
    disagreement) are JSON objects where present; their values are checked where they are used (tau, the limit...)."""
    sections = {"dream_env": card.get("dream_env"), "uncertainty": card.get("uncertainty")}
    held = card.get("uncertainty").get("heldout_disagreement") if isinstance(card.get("uncertainty"), dict) else None
    sections["uncertainty.heldout_disagreement"] = held
    sections["uncertainty.heldout_disagreement.quantiles"] = held.get("quantiles") if isinstance(held, dict) else None
    for name, value in sections.items():
        if value is not None and not isinstance(value, dict):
            raise ModelFormatError(f"{path}: {name} must be a JSON object (e.g. {{\"tau\": 1.15}} for dream_env), got "
                                   f"{value!r:.100}. Fix the card, or re-export the model.")


def build_model(card: dict[str, Any], device: str | torch.device | None = None) -> WorldModel:
    """An untrained model with the architecture a card describes (``device="meta"``: shapes only, no memory)."""
    cls = FAMILIES[card["family"]]
    try:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return cls(
                observation_space=space_from_dict(card["observation_space"]),
                action_space=space_from_dict(card["action_space"]),
                preprocessing=Preprocessing.from_dict(card["preprocessing"]),
                **card["params"],
            )
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError, AttributeError) as e:
        raise ModelCardMismatch(f"The model card's parameters do not build a {card['family']} model: {e!r}. Re-export the model.") from e


def _check_tensors(weights_path: Path, expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor],
                   floors: dict[str, float]) -> dict[str, torch.Tensor]:
    """Every stored tensor has the kind of number the model needs (floats are never made from integers) and, once cast
    to the model's dtype, only finite values (a float64 1e39 is finite, but inf in float32; a NaN or inf weight, a
    diverged fit, would dream NaN), and each tensor of ``floors`` (a standardiser's std) is at least its floor.
    Returns the tensors as cast."""
    cast = {}
    for k in sorted(expected):
        want, got = expected[k], tensors[k]
        if want.is_floating_point() != got.is_floating_point() or (not want.is_floating_point() and want.dtype != got.dtype):
            raise ModelFormatError(
                f"{weights_path}: tensor {k!r} is stored as {got.dtype}, but the model needs {want.dtype}"
                f"{' (float32 or float16)' if want.is_floating_point() else ''}; it is not cast. "
                f"The file was not written by gym-dream's save_model: re-export the model from its training run."
            )
        cast[k] = got = got.to(want.dtype)
        if got.is_floating_point():
            bad = int((~torch.isfinite(got)).sum())
            if bad:
                beyond = f" (stored as {tensors[k].dtype}, beyond {want.dtype}'s range)" if tensors[k].dtype != want.dtype else ""
                raise ModelFormatError(
                    f"{weights_path}: tensor {k!r} holds {bad} NaN or infinite value(s){beyond} of {got.numel()}; the model is broken "
                    f"(a diverged fit, or a damaged file). Refit it (e.g. with a lower learning rate) or use an earlier copy."
                )
            if k in floors and got.numel() and float(got.min()) < floors[k]:
                raise ModelFormatError(
                    f"{weights_path}: tensor {k!r} (a standard deviation observations are divided by) holds {float(got.min())!r}, "
                    f"below {floors[k]:g}: the model's observations would be inf or NaN. The file was damaged or not written by "
                    f"gym-dream's fit (which floors it at {floors[k]:g}): refit the model or use an earlier copy."
                )
    return cast


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu") -> WorldModel:
    """Load a model directory, checking the card against the weights; returns an eval-mode model."""
    directory = Path(directory)
    device = check_device(device)
    card = read_card(directory)
    # the architecture on the meta device first (no memory): a card cannot make us allocate more than
    # its weights file holds, and every tensor is checked before the real model is built
    shapes = build_model(card, device="meta")
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelFormatError(f"{directory} has a card but no {WEIGHTS_FILE}.")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFormatError(
            f"{weights_path} cannot be read ({e}); the file is truncated or corrupted. Re-copy or re-export the model."
        ) from e
    expected = shapes.state_dict()
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
        raise ModelCardMismatch(f"{directory}: the card does not match the weights ({'; '.join(parts)}); the model is broken. "
                                f"Re-copy or re-export it from its training run.")
    cast = _check_tensors(weights_path, expected, tensors, shapes.positive_weights())
    model = build_model(card)
    model.load_state_dict(cast)
    model.card = card
    model.source = str(directory)
    return model.to(device).eval().requires_grad_(False)


def with_features(source: str | os.PathLike, out: str | os.PathLike, features: str) -> Path:
    """A copy of the model directory ``source`` in ``out`` whose agents see ``features`` (an MDN-RNN's ``"zh"``:
    ``[z, h]``, or ``"zch"``: ``[z, c, h]``, :data:`gym_dream.models.mdnrnn.FEATURES`). The weights, the dream and the
    card's documentation are the source's; the card's ``agents`` and ``scores`` are left out (those agents read the
    source's features). ``out`` must not exist: nothing there is overwritten."""
    source, out = Path(source), Path(out)
    card = read_card(source)
    if card["family"] != "mdnrnn":
        raise ValueError(f"{source} is a {card['family']} model; only an MDN-RNN (an LSTM memory) has another view "
                         "(features zh or zch). An RSSM's agents see [h, s].")
    if out.exists():
        raise FileExistsError(f"{out} exists; pass a new directory for the copy (nothing is overwritten).")
    params = {k: v for k, v in card["params"].items() if k != "features"}
    view = build_model({**card, "params": {**params, "features": features}})  # an unknown view fails here, before any file
    view.load_state_dict(load_model(source).state_dict())
    doc = {k: v for k, v in card.items() if k not in ("agents", "scores")}
    doc["features_view"] = {"features": features, "of": source.resolve().name,
                            "note": "the weights of that model; only what an agent sees differs (gym-dream features)"}
    stage = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(stage, ignore_errors=True)  # a copy an interrupted call left half written
    save_model(view, stage, doc, half=card.get("weights", {}).get("dtype") == "float16")
    stage.rename(out)
    return out
