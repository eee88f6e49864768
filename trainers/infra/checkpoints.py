"""Training checkpoints without pickle: module and optimizer tensors in safetensors, the rest in JSON.

A checkpoint is one ``.safetensors`` file written atomically; its JSON metadata holds the
optimizers' non-tensor state (param groups, step counts) and the caller's progress record.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors import safe_open
from torch import nn

from gym_dream.checkpoint import _fsync_dir, _umask_mode, atomic_write_tensors

logger = logging.getLogger(__name__)


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    sd = opt.state_dict()
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if name.startswith(prefix + ".state."):
            pid, key = name[len(prefix) + 7 :].split(".", 1)
            state.setdefault(int(pid), {})[key] = t
    for name, v in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | os.PathLike, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], record: dict[str, Any]) -> None:
    """Atomically write modules, optimizers and a JSON ``record`` (epoch, losses, RNG seeds...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"module.{name}.{k}"] = v.detach().cpu().contiguous()
    opt_meta = {name: _flatten_optimizer(f"optim.{name}", o, tensors) for name, o in optimizers.items()}
    meta = {"record": json.dumps(record), "optimizers": json.dumps(opt_meta)}
    atomic_write_tensors(path, tensors, metadata=meta)


def load_checkpoint(path: str | os.PathLike, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """Restore modules and optimizers in place; returns the saved record."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    for name, m in modules.items():
        prefix = f"module.{name}."
        m.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    opt_meta = json.loads(meta["optimizers"])
    for name, o in optimizers.items():
        o.load_state_dict(_unflatten_optimizer(f"optim.{name}", opt_meta[name], tensors))
    return json.loads(meta["record"])


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON record of a checkpoint, without loading any tensor."""
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["record"])


class Stage:
    """Per-epoch checkpoint and resume of one training stage (``fit``'s VAE and MDN-RNN, the RSSM fit): the
    modules, optimizers and a progress record, refused when another fit's settings wrote it."""

    def __init__(self, path: Path, config_hash: str, modules: dict, optimizers: dict):
        self.path, self.hash, self.modules, self.optimizers = path, config_hash, modules, optimizers

    def resume(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"epoch": 0, "history": [], "best": None}
        if read_record(self.path).get("config_hash") != self.hash:
            raise ValueError(
                f"{self.path} was written by a fit with other settings; delete {self.path.parent} "
                "to start over, or pass another --out."
            )
        record = load_checkpoint(self.path, self.modules, self.optimizers)
        logger.info(f"resuming {self.path.name} after epoch {record['epoch']}")
        return record

    def save(self, record: dict[str, Any]) -> None:
        save_checkpoint(self.path, self.modules, self.optimizers, {**record, "config_hash": self.hash})


# -- replacing a directory as a whole -----------------------------------------------------------------
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd = -100
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(directory: str | os.PathLike, write: Any) -> Path:
    """Replace ``directory`` as a whole: ``write(tmp)`` fills a sibling temporary directory, which is then
    swapped in atomically, so a kill at any moment leaves the old complete directory or the new complete one
    (never new weights with an old card). Entries of the old directory that ``write`` did not produce (e.g. an
    ``agents/`` folder) are copied over before the swap: what a user put there is not deleted. Leftovers of an
    earlier killed swap are removed. Where the system cannot swap directories atomically (not Linux), the old
    one is renamed aside first: a kill in that instant leaves it whole under ``.<name>.old-*``."""
    import shutil

    directory = Path(directory)
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in list(parent.glob(f".{directory.name}.new-*")) + list(parent.glob(f".{directory.name}.old-*")):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.new-"))
    try:
        os.chmod(tmp, _dir_mode())
        write(tmp)
        if directory.is_dir():
            for entry in directory.iterdir():
                if not (tmp / entry.name).exists():
                    (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, tmp / entry.name)
            if not _exchange(tmp, directory):
                aside = Path(tempfile.mkdtemp(dir=parent, prefix=f".{directory.name}.old-"))
                os.rmdir(aside)
                os.rename(directory, aside)
                os.rename(tmp, directory)
                tmp = aside
        else:
            os.rename(tmp, directory)
        _fsync_dir(parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _dir_mode() -> int:
    """rwxr-xr-x less the umask (mkdtemp makes directories private to the owner)."""
    return _umask_mode() | (_umask_mode() & 0o444) >> 2


def save_model_dir(model, directory: str | os.PathLike, card: dict[str, Any] | None = None, half: bool = False) -> Path:
    """:func:`gym_dream.checkpoint.save_model`, replacing an existing model directory as a whole (:func:`replace_dir`)."""
    from gym_dream.checkpoint import save_model

    return replace_dir(directory, lambda tmp: save_model(model, tmp, card, half=half))
