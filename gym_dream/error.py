"""Errors raised by gym_dream. Each message names the problem and the fix."""

from __future__ import annotations

import difflib

from gymnasium.error import Error


class GymDreamError(Error):
    """Base class of every gym_dream error."""


class ModelNotFound(GymDreamError, LookupError):
    """A model name or path that no source of the model store can resolve."""

    @classmethod
    def for_name(cls, name: str, available: list[str], hint: str = "") -> "ModelNotFound":
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        msg = f"No world model named {name!r}."
        if close:
            msg += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        msg += f" Available models: {', '.join(sorted(available)) or '(none)'}."
        msg += (
            " Pass a model directory (containing model.json and model.safetensors), a name in"
            " $GYM_DREAM_HOME/models, or install a model package."
        )
        if hint:
            msg += " " + hint
        return cls(msg)


class ModelFormatError(GymDreamError, ValueError):
    """A model directory whose files are missing, corrupted or of an unknown format version."""


class ModelMismatch(GymDreamError, ValueError):
    """A model card that does not agree with its weights, or a model that does not fit an env."""


class ModelCardMismatch(ModelFormatError, ModelMismatch):
    """A model directory whose card does not agree with its weights (tensors missing, unexpected or of another shape) or
    whose parameters build no model: a broken model (a :class:`ModelFormatError`) and a card/weights disagreement (a
    :class:`ModelMismatch`), so either ``except`` catches it."""


class DependencyNotInstalled(GymDreamError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DeviceNotAvailable(GymDreamError, ValueError):
    """A torch device that this machine does not have (e.g. ``device="cuda"`` without CUDA)."""


class DataFormatError(GymDreamError, ValueError):
    """A data file (a dataset shard, a JSON record) that is truncated, corrupted or of an unknown layout;
    the message names the file and what to do with it."""


class UnsafeId(GymDreamError, ValueError):
    """An env id, package name or version that a model package may not declare (it could replace an
    env it does not own, or inject text into generated files)."""


class FolderBusy(GymDreamError, RuntimeError):
    """Another process is writing to the same run folder (a CMA-ES or SB3 run, a fit, a PlaNet loop)."""


class DatasetBusy(FolderBusy):
    """Another process is writing to the same dataset folder."""


class RefusedIdWarning(UserWarning):
    """A model package declared an env id it may not register (not a ``Dream-*`` id, or another library's); it was not registered."""


class PerformanceWarning(UserWarning):
    """A setting that runs correctly but far slower than the default on this machine (``precision="bfloat16"`` on a
    CPU without bf16 dot products); the message names the measured cost and the faster choice."""
