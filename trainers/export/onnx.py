"""A model's dream as ONNX graphs, for a runtime without torch (``gym-dream export MODEL --runtime onnx``).

Three graphs and a manifest, written to one folder (:data:`DREAM_DIR` inside an exported package):

* ``initial_state.onnx``: ``index`` (B,) int64 rows of the start-state bank -> the state tensors and ``features``
  (the bank is a constant of the graph; the caller draws ``index`` uniformly over ``bank_size`` rows);
* ``imagine.onnx``: the state tensors, ``action`` ((B,) int64 for Discrete, (B, A) float32 for Box), ``tau`` (B,)
  float32 and every random number of the step (the family's :meth:`~gym_dream.models.base.WorldModel.noise_spec`:
  standard normals and uniforms on [0, 1), drawn by the caller's numpy generator) -> the next state tensors,
  ``reward``, ``termination_prob`` and ``features`` (what an agent sees);
* ``decode.onnx``: the state tensors -> ``observation`` (the predicted frame, (B, H, W, 3) uint8, or vector);
* ``dream.json``: what the runtime needs to call them (state names and shapes, noise, spaces, the card's dream
  settings), plain data.

The batch dimension of every graph is dynamic. The graphs are the family's own torch code, traced: ``imagine``
runs ``model.imagine(..., noise=...)``, the path the torch dream takes with noise drawn from its generator, so the
exported dream is the torch dream for the same numbers (to float rounding; tests/trainers/test_onnx_export.py). A
family plugs in by implementing ``start_state``, ``noise_spec`` and ``imagine(noise=)`` (the protocol's exportable
dream, :class:`~gym_dream.models.base.WorldModel`); the adapters here are family-agnostic. Single-member float32
models only (every shipped model): an ensemble's member draws are not inputs yet.

Exporter: ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based exporter. It is torch's default and
maintained path (the TorchScript-based exporter is deprecated since torch 2.9), it takes the batch dimension as a
symbolic ``Dim`` that the graph is checked against (a shape assumption baked into the trace fails the export instead
of giving a graph that is wrong at another batch size), and it needs no TorchScript scripting of the families'
Python control flow: the flags (members, precision, pixels) are fixed at trace time. Its cost is a few seconds per
graph and the ``onnxscript`` dependency (the ``onnx`` extra), both on the exporting side only.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from gym_dream.models import WorldModel
from gym_dream.spaces import space_to_dict

#: the folder of the graphs inside an exported package, and the manifest's name
DREAM_DIR = "dream"
MANIFEST = "dream.json"
GRAPHS = ("initial_state", "imagine", "decode")
#: the manifest's format (gym_dream_onnx reads this version)
FORMAT_VERSION = 1
OPSET = 18


def check_exportable(model: WorldModel) -> None:
    """A clear error for a model whose dream cannot be exported (yet)."""
    if model.members > 1:
        raise ValueError(f"This model has {model.members} dynamics members; an exported dream runs single-member models only "
                         "(every shipped model). Export a model fitted with --members 1.")
    try:
        model.noise_spec()
    except NotImplementedError as e:
        raise ValueError(str(e)) from None


def _state_template(model: WorldModel) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model.start_state(torch.zeros(2, dtype=torch.long, device=model.device))


class InitialState(nn.Module):
    """``index`` -> the bank's start states and their features."""

    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, index: torch.Tensor):
        state = self.model.start_state(index)
        return (*state.values(), self.model.features(state))


class ImagineStep(nn.Module):
    """One dream step with its noise as inputs: ``model.imagine(..., noise=...)``."""

    def __init__(self, model: WorldModel, state_names: list[str], noise_names: list[str]):
        super().__init__()
        self.model, self.state_names, self.noise_names = model, state_names, noise_names

    def forward(self, *inputs: torch.Tensor):
        n = len(self.state_names)
        state = dict(zip(self.state_names, inputs[:n]))
        action, tau = inputs[n], inputs[n + 1]
        noise = dict(zip(self.noise_names, inputs[n + 2:]))
        tr = self.model.imagine(state, action, tau, noise=noise)
        return (*tr.state.values(), tr.reward, tr.termination_prob, self.model.features(tr.state))


class Decode(nn.Module):
    """The state tensors -> the predicted observation."""

    def __init__(self, model: WorldModel, state_names: list[str]):
        super().__init__()
        self.model, self.state_names = model, state_names

    def forward(self, *state: torch.Tensor):
        return self.model.decode(dict(zip(self.state_names, state)))


def _export(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str]) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    dynamic: tuple = tuple({0: batch} for _ in args)
    if module.forward.__code__.co_flags & 0x04:  # forward(*inputs): one entry for the varargs
        dynamic = (dynamic,)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's progress notes and torch.export's deprecation chatter
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names, output_names=output_names,
                                    dynamic_shapes=dynamic, opset_version=OPSET, external_data=False, verbose=False,
                                    report=False, optimize=True)
    return program.model_proto.SerializeToString()


def _action_example(model: WorldModel, batch: int) -> torch.Tensor:
    if isinstance(model.action_space, spaces.Discrete):
        return torch.full((batch,), int(model.action_space.start), dtype=torch.long)
    return torch.zeros(batch, model.action_dim)


def export_dream(model: WorldModel, out: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write the dream's graphs and manifest to ``out`` (created) and return it. ``card``: the model card whose
    ``dream_env`` settings (tau, termination, horizon, id) and real env the manifest carries (default: ``model.card``)."""
    check_exportable(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().requires_grad_(False)
    card = dict(model.card if card is None else card)
    template = _state_template(model)
    names = list(template)
    noise = model.noise_spec()
    batch = 2  # traced at 2 (a batch of 1 would let the exporter specialise the dimension), exported dynamic
    index = torch.zeros(batch, dtype=torch.long)
    state = {k: v.expand(batch, *v.shape[1:]).contiguous() for k, v in template.items()}
    action = _action_example(model, batch)
    tau = torch.ones(batch)
    noise_args = [torch.zeros(batch, *shape) + (0.5 if kind == "uniform" else 0.0) for kind, shape in noise.values()]
    graphs = {
        "initial_state": _export(InitialState(model), (index,), ["index"], [*names, "features"]),
        "imagine": _export(ImagineStep(model, names, list(noise)), (*state.values(), action, tau, *noise_args),
                           [*names, "action", "tau", *noise], [*(f"next_{k}" for k in names), "reward", "termination_prob", "features"]),
        "decode": _export(Decode(model, names), tuple(state.values()), names, ["observation"]),
    }
    for name, data in graphs.items():
        (out / f"{name}.onnx").write_bytes(data)
    with torch.no_grad():
        decoded = model.decode(state)
    pixels = model.preprocessing.kind == "image"
    dream_env = card.get("dream_env") if isinstance(card.get("dream_env"), dict) else {}
    env = card.get("env") if isinstance(card.get("env"), dict) else {}
    manifest = {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "bank_size": model.bank_size,
        "state": {k: list(v.shape[1:]) for k, v in template.items()},
        "noise": {k: {"kind": kind, "shape": list(shape)} for k, (kind, shape) in noise.items()},
        "action_space": space_to_dict(model.action_space),
        "feature_dim": int(model.feature_dim),
        "observation": {"pixels": pixels, "shape": list(decoded.shape[1:]), "dtype": str(decoded.dtype).removeprefix("torch.")},
        "dream_env": {k: dream_env[k] for k in ("id", "tau", "termination", "max_episode_steps") if k in dream_env},
        "real_env_id": env.get("id"),
        "graphs": {g: f"{g}.onnx" for g in GRAPHS},
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


# -- the package: `gym-dream export MODEL --runtime onnx` -----------------------------------------------------------
#: the runtime an exported package needs (gym_dream_onnx/, its own distribution): its series that reads FORMAT_VERSION
RUNTIME_REQUIREMENT = "gym-dream-onnx>=0.1,<0.2"
#: the entry-point group gym_dream_onnx finds exported packages through (gym_dream_onnx.registry.ENTRY_POINT_GROUP)
RUNTIME_ENTRY_POINT_GROUP = "gym_dream_onnx.models"


#: gym-dream-onnx's own dependencies (as gym_dream_onnx/pyproject.toml lists them: a test keeps the two equal)
RUNTIME_DEPENDENCIES = ("numpy>=1.24", "gymnasium>=1.1", "onnxruntime>=1.20")


def build_runtime_wheel(out: str | Path) -> Path:
    """The torch-free runtime (the ``gym_dream_onnx`` next to this gym-dream) as a ``py3-none-any`` wheel in ``out``,
    written beside an exported package so that ``pip install --find-links <out> <package wheel>`` installs both offline."""
    import gym_dream_onnx

    from trainers.export.package import build_wheel

    src = Path(gym_dream_onnx.__file__).parent
    files = {f"gym_dream_onnx/{p.name}": p.read_bytes() for p in sorted(src.glob("*.py"))}
    requires = "".join(f"Requires-Dist: {d}\n" for d in RUNTIME_DEPENDENCIES)
    metadata = (f"Metadata-Version: 2.1\nName: gym-dream-onnx\nVersion: {gym_dream_onnx.__version__}\n"
                "Summary: Exported gym-dream world models as Gymnasium environments on onnxruntime + numpy, without torch.\n"
                f"Requires-Python: >=3.10\n{requires}")
    return build_wheel(files, "gym-dream-onnx", gym_dream_onnx.__version__, metadata, "", Path(out))


def _readme(card: dict[str, Any], dist: str, env_id: str) -> str:
    """The torch package's README (gym-dream's card_readme), its usage replaced by the torch-free runtime's."""
    from trainers.export.package import card_readme

    text = card_readme(card, dist, env_id)
    about = text[text.index("## The model"):] if "## The model" in text else ""
    usage = [
        f"# {dist}: `{env_id}` (ONNX, no torch)", "",
        "The dream of a gym-dream world model, exported as ONNX graphs and run by onnxruntime + numpy "
        "(the `gym-dream-onnx` runtime): installing this package never installs torch.", "",
        "## Use", "", "```python", "import gymnasium as gym",
        "import gym_dream_onnx  # registers the ids of every installed exported dream", "",
        f'env = gym.make("{env_id}")',
        f'envs = gym.make_vec("{env_id}", num_envs=1024, vectorization_mode="vector_entry_point")',
        "```", "",
    ]
    return "\n".join(usage) + "\n" + about


def export_package(cfg) -> dict[str, Any]:
    """``gym-dream export MODEL --runtime onnx``: the dream's graphs as a wheel whose only dependency is the torch-free
    runtime (:data:`RUNTIME_REQUIREMENT`), and its project folder ``<out>/<name>/`` (regenerated on each export).
    ``cfg`` is a checked :class:`trainers.export.package.ExportConfig`; ``--half`` is refused (the graphs are float32)."""
    import tempfile

    from gym_dream.checkpoint import CARD_FILE, load_model, read_card
    from gym_dream.checkpoint import atomic_write_bytes
    from gym_dream.naming import one_line
    from trainers.export.package import build_wheel, module_name, pyproject_toml, stage_model_dir

    if cfg.half:
        raise ValueError("--half stores torch weights as float16; an ONNX dream runs float32 graphs. Drop --half with --runtime onnx.")
    module = module_name(cfg.name)
    with tempfile.TemporaryDirectory(prefix="gym-dream-onnx-export-") as staging:
        staged = stage_model_dir(cfg.model_dir, Path(staging) / "model", cfg.env_id, cfg.max_episode_steps, False, cfg.requires)
        card = read_card(staged)
        model = load_model(staged)
        check_exportable(model)
        dream = export_dream(model, Path(staging) / DREAM_DIR, card)
        files = {f"{DREAM_DIR}/{p.name}": p.read_bytes() for p in sorted(dream.iterdir())}
    files[CARD_FILE] = (json.dumps(card, indent=2) + "\n").encode()  # the model's documentation (no weights: the graphs hold them)
    real = one_line((card.get("env") or {}).get("id", "an environment") if isinstance(card.get("env"), dict) else "an environment", 100)
    summary = one_line(f"{cfg.env_id}: a gym-dream world-model environment of {real}, as ONNX (no torch)", 200)
    readme = _readme(card, cfg.name, cfg.env_id)
    init = (f'"""{cfg.name}: the ONNX dream of {cfg.env_id} (data only; gym_dream_onnx finds it through the entry point).\n\n'
            f'Use it with: import gymnasium as gym; import gym_dream_onnx; gym.make("{cfg.env_id}")\n"""\n').encode()
    project = Path(cfg.out) / cfg.name
    pkg = project / "src" / module
    for rel, data in {"__init__.py": init, **files}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(pkg / rel, data)
    atomic_write_bytes(project / "README.md", readme.encode())
    atomic_write_bytes(project / "pyproject.toml", pyproject_toml(cfg.name, cfg.version, summary, RUNTIME_REQUIREMENT, RUNTIME_ENTRY_POINT_GROUP,
                                                                module, [CARD_FILE, f"{DREAM_DIR}/*"], "ONNX graphs + JSON").encode())
    metadata = (f"Metadata-Version: 2.1\nName: {cfg.name}\nVersion: {cfg.version}\nSummary: {summary}\nRequires-Python: >=3.10\n"
                f"Requires-Dist: {RUNTIME_REQUIREMENT}\nDescription-Content-Type: text/markdown\n\n" + readme)
    entry_points = f"[{RUNTIME_ENTRY_POINT_GROUP}]\n{cfg.name} = {module}\n"
    wheel_files = {f"{module}/__init__.py": init, **{f"{module}/{rel}": data for rel, data in files.items()}}
    wheel = build_wheel(wheel_files, cfg.name, cfg.version, metadata, entry_points, Path(cfg.out))
    return {"project": project, "wheel": wheel, "runtime_wheel": build_runtime_wheel(cfg.out), "kept": []}
