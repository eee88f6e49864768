"""Training checkpoints without pickle: module and optimizer tensors in safetensors, the rest in JSON.

A checkpoint is one ``.safetensors`` file written atomically; its JSON metadata holds the
optimizers' non-tensor state (param groups, step counts) and the caller's progress record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
