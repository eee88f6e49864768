"""Turn a trained model into a pip-installable environment package (``gym-dream export``).

The package holds data only: ``model.safetensors`` + ``model.json`` as package data, an empty
``__init__.py`` and an entry point in the ``gym_dream.models`` group naming the package. gym_dream
finds the files through that entry point without importing the package, reads the card's
``dream_env`` section and registers the id, so after ``pip install`` of the wheel
``import gym_dream; gym.make("Dream-MyGame-v0")`` works with no other step. Installing a wheel
runs no code, and loading reads JSON and safetensors only.

The wheel is written directly (a wheel is a zip with a few metadata files), so exporting needs no
build tool and no network. The project folder written next to it is a normal setuptools project:
edit its README and rebuild it with ``pip wheel`` if you like; a re-export keeps a README or
``pyproject.toml`` you edited (it records the hash of what it generated in ``.gym-dream-export.json``)
and never deletes anything. The id must be a ``Dream-*`` id, the name, version and version range follow
strict grammars (:mod:`gym_dream.naming`), and card text is escaped into every generated file. The name starts with
``dream-`` (``--name-ok`` accepts another name of yours) and never is, nor imports as, an installed distribution, a
package the runtime needs or a standard-library module: the wheel would install over it. The card's real env id is
a plain registered id (no ``module:`` prefix, which ``gym.make`` would import).

gym-dream's own bundled models are staged by :func:`stage_model_dir`, exactly as an exported
package's model is, and found through the same entry-point group.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gym_dream import __version__
from gym_dream.checkpoint import CARD_FILE, WEIGHTS_FILE, load_model, read_card, save_model
from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.error import ModelFormatError
from gym_dream.envs.registry import BUILTIN_IDS
from gym_dream.naming import (check_dist_name, check_dream_id, check_package_name, check_real_env_id, check_release,
                               check_version_range, import_name, one_line)
from gym_dream.store import ENTRY_POINT_GROUP
from gym_dream.versions import compatible_range

#: written next to the generated project files: the hash of what export generated, so a re-export
#: can tell a file the user edited (kept) from one it may regenerate
EXPORT_RECORD = ".gym-dream-export.json"
# card fields written by staging (the rest of the card is the model's own documentation)
MANAGED_FIELDS = ("dream_env", "requires_gym_dream")
#: what an exported package's dream runs on (``--runtime``)
RUNTIMES = ("torch", "onnx")


@dataclass
class ExportConfig:
    model_dir: str = ""
    """the trained model directory (model.json + model.safetensors)"""
    env_id: str = ""
    """the id users will gym.make, e.g. Dream-MyGame-v0 (a versioned Gymnasium id)"""
    name: str = ""
    """the pip distribution name, e.g. dream-mygame (also the model's name in gym_dream's store)"""
    out: str = "dist"
    """folder for the generated project (<out>/<name>/) and the wheel"""
    version: str = "0.1.0"
    """the package's version"""
    max_episode_steps: int | None = None
    """the dream's horizon (default: the real env's, from the model card)"""
    half: bool = False
    """store the weights as float16 (half the size; loads back as float32)"""
    requires: str | None = None
    """gym-dream versions the package works with (default: this release's series, e.g. >=0.1,<0.2)"""
    runtime: str = "torch"
    """what the package's dream runs on: torch (the weights, needs gym-dream) or onnx (the dream step as ONNX graphs,
    needs only the torch-free gym-dream-onnx: numpy + onnxruntime + gymnasium; see trainers/export/onnx.py)"""
    name_ok: bool = False
    """accept a --name that does not start with dream- (a name you own and mean to publish); the name of an installed
    distribution, of an import name one provides, of gym-dream or a package it runs on, or of a standard-library module
    is refused all the same (default: False)"""


def module_name(dist_name: str) -> str:
    """The import name for a distribution name (``dream-mygame`` -> ``dream_mygame``)."""
    return import_name(dist_name)


def _check(cfg: ExportConfig) -> None:
    if not cfg.model_dir:
        raise ValueError("Give the model directory to export: gym-dream export MODEL_DIR --env-id Dream-MyGame-v0 --name dream-mygame")
    check_dream_id(cfg.env_id)
    check_package_name(cfg.name, name_ok=cfg.name_ok)  # dream-*, and never an installed project's or the runtime's name
    check_release(cfg.version)
    if cfg.runtime not in RUNTIMES:
        raise ValueError(f"--runtime must be one of {RUNTIMES} (torch: the weights, for gym-dream; onnx: the dream as ONNX graphs, "
                         f"for the torch-free gym-dream-onnx), got {cfg.runtime!r}.")
    if cfg.requires is not None:
        cfg.requires = check_version_range(cfg.requires)
    if cfg.max_episode_steps is not None and (isinstance(cfg.max_episode_steps, bool) or not isinstance(cfg.max_episode_steps, int) or cfg.max_episode_steps < 1):
        raise ValueError(f"--max-episode-steps must be an integer >= 1, got {cfg.max_episode_steps!r}.")


def stage_model_dir(model_dir: str | Path, dest: str | Path, env_id: str, max_episode_steps: int | None = None,
                    half: bool = False, requires: str | None = None) -> Path:
    """Copy a model into ``dest`` as a package's model: weights (optionally fp16) and the card with its
    ``dream_env`` id and the gym-dream range it needs. The model is fully loaded first, so a broken
    model is refused here rather than after someone installs it."""
    model_dir, dest = Path(model_dir), Path(dest)
    check_dream_id(env_id)
    if requires is not None:
        requires = check_version_range(requires)
    card = read_card(model_dir)
    real = (card.get("env") or {}).get("id")
    if real is not None:  # read_card checked it too: a card's real env id is never one gym.make would import code for
        check_real_env_id(real, f"{model_dir / CARD_FILE}: env.id", ModelFormatError)
    model = load_model(model_dir)  # checks every tensor against the card
    horizon = max_episode_steps or (card.get("env") or {}).get("max_episode_steps")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1):
        raise ModelFormatError(f"{model_dir / CARD_FILE}: env.max_episode_steps must be an integer >= 1, got {horizon!r}; pass --max-episode-steps.")
    extra = {k: v for k, v in card.items() if k not in MANAGED_FIELDS}
    kept = {k: v for k, v in (card.get("dream_env") or {}).items() if k not in ("id", "max_episode_steps")}  # e.g. termination
    extra["dream_env"] = {"id": env_id, **({"max_episode_steps": int(horizon)} if horizon else {}), **kept}
    extra["requires_gym_dream"] = requires or compatible_range(__version__)
    dest.mkdir(parents=True, exist_ok=True)
    if half or card.get("weights", {}).get("dtype") == "float16":
        save_model(model, dest, extra, half=True)  # re-saves the card's structural fields from the model
    else:
        shutil.copyfile(model_dir / WEIGHTS_FILE, dest / WEIGHTS_FILE)
        full = dict(card)
        full.update(dream_env=extra["dream_env"], requires_gym_dream=extra["requires_gym_dream"])
        atomic_write_bytes(dest / CARD_FILE, (json.dumps(full, indent=2) + "\n").encode())
    read_card(dest)
    return dest


def record_scores(model_dir: str | Path, rows: list[dict[str, Any]], source: str) -> None:
    """Write evaluation rows (from :func:`trainers.evaluation.evaluate.evaluate`) into a model card's ``scores``."""
    path = Path(model_dir) / CARD_FILE
    card = json.loads(path.read_text())
    scores: dict[str, Any] = {}
    for r in rows:
        scores[r["agent"]] = {
            "real": f"{r['real']['mean']:.1f} ± {r['real']['std']:.1f} over {r['real']['episodes']} episodes",
            "dream": {t: f"{v['mean']:.1f} ± {v['std']:.1f}" for t, v in r["dream"].items()},
        }
    scores["source"] = source
    card["scores"] = scores
    atomic_write_bytes(path, (json.dumps(card, indent=2) + "\n").encode())


def _txt(x: Any, limit: int = 300) -> str:
    """Card text for the README: one line, HTML-escaped (a card is someone else's data)."""
    if isinstance(x, float):
        x = f"{x:.4g}"
    return one_line(x, limit).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_fmt = _txt


def _code(x: Any, limit: int = 2000) -> str:
    """Card data as one inline code span (backticks inside cannot close it)."""
    text = x if isinstance(x, str) else json.dumps(x)
    return "`" + one_line(text, limit).replace("`", "'") + "`"


def card_readme(card: dict[str, Any], dist: str, env_id: str) -> str:
    """A package README from a model card: usage, what the model is, its data, compute and scores.

    ``dist`` and ``env_id`` are checked names; every value taken from the card is escaped."""
    check_dist_name(dist)
    check_dream_id(env_id)
    env = card.get("env") if isinstance(card.get("env"), dict) else {}
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    heldout = training.get("heldout") if isinstance(training.get("heldout"), dict) else {}
    dream_env = card.get("dream_env") if isinstance(card.get("dream_env"), dict) else {}
    real = _txt(env.get("id", "an environment"))
    obs, act = card["observation_space"], card["action_space"]
    lines = [
        f"# {dist}: `{env_id}`",
        "",
        _txt(card["description"], 2000) if card.get("description") else f"A {_txt(card['family'])} world model of {real}, as a Gymnasium environment.",
        "",
        "## Use",
        "",
        "```python",
        "import gymnasium as gym",
        "import gym_dream  # registers the ids of every installed model package",
        "",
        f'env = gym.make("{env_id}")                      # one dream, at the model\'s default tau (tau=... to change)',
        f'envs = gym.make_vec("{env_id}", num_envs=1024,   # one batched tensor program',
        '                     vectorization_mode="vector_entry_point")',
        "```",
        "",
        f"An agent trained here acts on the real {_code(env.get('id', '?'))} through "
        "`gym_dream.wrappers.DreamObservation(real_env, model)`; this package's model is also reachable by name: "
        f"`gym_dream.resolve_model(\"{dist}\")`.",
        "",
        "## The model",
        "",
        f"- family: {_code(card['family'])}; model format version {_txt(card['format_version'])}; made with gym-dream "
        f"{_txt(card.get('gym_dream_version', '?'))}; needs gym-dream {_code(card.get('requires_gym_dream', '?'))}",
        f"- real env: {_code(env.get('id', '?'))}; dream horizon {_txt(dream_env.get('max_episode_steps', '?'))} steps; "
        f"default temperature tau {_txt(dream_env.get('tau', 1.0))}"
        + (" (calibrated: the tau at which random play does in the dream as in the real env)" if "tau_calibration" in dream_env else ""),
        f"- observation space {_code(obs.get('type'))} {_txt(obs.get('shape', ''))}, "
        f"action space {_code(act.get('type'))} {_txt(act.get('shape', act.get('n', '')))}",
        f"- preprocessing: {_code(card['preprocessing'])}",
        f"- weights: {_txt((card.get('weights') or {}).get('dtype', '?') if isinstance(card.get('weights'), dict) else '?')}, "
        "safetensors (no code is executed on loading)",
        f"- parameters: {_code(card['params'])}",
    ]
    if data:
        lines += ["", "## Data", ""] + [f"- {_txt(k)}: {_txt(v)}" for k, v in data.items()]
    if training:
        lines += ["", "## Training", ""]
        lines += [f"- {_txt(k)}: {_txt(v)}" for k, v in training.items() if k not in ("heldout", "hyperparameters")]
        if training.get("hyperparameters"):
            lines.append(f"- hyperparameters: {_code(training['hyperparameters'])}")
        for part, metrics in heldout.items():
            if isinstance(metrics, dict) and metrics:
                lines.append(f"- held-out {_txt(part)}: " + ", ".join(f"{_txt(k)} {_txt(v)}" for k, v in metrics.items()))
    scores = card.get("scores") if isinstance(card.get("scores"), dict) else {}
    lines += ["", "## Scores", ""]
    if scores:
        lines += [f"- {_txt(k)}: {_txt(json.dumps(v)) if isinstance(v, (dict, list)) else _txt(v)}" for k, v in scores.items()]
    else:
        lines.append("No scores recorded in the model card.")
    if card.get("reproduce"):
        lines += ["", "## Reproduce", "", _code(card["reproduce"])]
    return "\n".join(lines) + "\n"


def _toml_str(text: str) -> str:
    """A TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def pyproject_toml(name: str, version: str, summary: str, dependency: str, group: str, module: str, data: list[str], what: str) -> str:
    """An exported model package's ``pyproject.toml`` (either runtime): data only, found through the entry-point ``group``."""
    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = {_toml_str(one_line(summary))}
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["{dependency}"]  # the runtime only: the package is data ({what})
# the runtime's model store reads this group; the card in the package names the env id
[project.entry-points."{group}"]
"{name}" = "{module}"

[tool.setuptools]
packages = ["{module}"]
package-dir = {{"" = "src"}}

[tool.setuptools.package-data]
{module} = [{", ".join(f'"{f}"' for f in data)}]
"""


def _init_py(dist: str, env_id: str) -> str:
    return (
        f'"""{dist}: data for the gym-dream environment {env_id} (model.json + model.safetensors).\n\n'
        f"Nothing here runs: gym_dream locates these files through the entry point without importing this package.\n"
        f'Use it with: import gymnasium as gym; import gym_dream; gym.make("{env_id}")\n"""\n'
    )


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(files: dict[str, bytes], dist: str, version: str, metadata: str, entry_points: str, out: Path) -> Path:
    """Write a pure-Python ``py3-none-any`` wheel holding ``files`` (archive path -> bytes)."""
    norm = re.sub(r"[-_.]+", "_", dist)
    info = f"{norm}-{version}.dist-info"
    wheel_meta = "Wheel-Version: 1.0\nGenerator: gym-dream export\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    contents = dict(files)
    contents[f"{info}/METADATA"] = metadata.encode()
    contents[f"{info}/WHEEL"] = wheel_meta.encode()
    contents[f"{info}/entry_points.txt"] = entry_points.encode()
    contents[f"{info}/top_level.txt"] = (module_name(dist) + "\n").encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in contents.items())
    record += f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{norm}-{version}-py3-none-any.whl"
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    tmp.replace(path)
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_record(project: Path) -> dict[str, str]:
    try:
        record = json.loads((project / EXPORT_RECORD).read_text())
        return {str(k): str(v) for k, v in (record.get("generated") or {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def export(cfg: ExportConfig) -> dict[str, Any]:
    """Write the package project to ``<out>/<name>/`` and its wheel to ``<out>/``.

    Returns the paths (``project``, ``wheel``) and ``kept``: the project files the user edited since
    the last export, which are left as they are (the wheel then carries the edited README). Nothing is
    ever deleted: the package's model files are staged in full (read from the source model, which may
    itself be the package directory of an earlier export) and then each replaced atomically.
    """
    _check(cfg)
    if cfg.runtime == "onnx":
        from trainers.export.onnx import export_package

        return export_package(cfg)
    module = module_name(cfg.name)
    project = Path(cfg.out) / cfg.name
    pkg = project / "src" / module
    kept: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="gym-dream-export-") as staging:  # a broken model leaves nothing in --out
        staged = stage_model_dir(cfg.model_dir, staging, cfg.env_id, cfg.max_episode_steps, cfg.half, cfg.requires)
        card = read_card(staged)
        model_files = {f: (staged / f).read_bytes() for f in (CARD_FILE, WEIGHTS_FILE)}
    pkg.mkdir(parents=True, exist_ok=True)
    requires = check_version_range(card["requires_gym_dream"], "the card's requires_gym_dream")
    real = one_line((card.get("env") or {}).get("id", "an environment") if isinstance(card.get("env"), dict) else "an environment", 100)
    summary = one_line(f"{cfg.env_id}: a gym-dream world-model environment of {real}", 200)
    generated = {
        "README.md": card_readme(card, cfg.name, cfg.env_id).encode(),
        "pyproject.toml": pyproject_toml(cfg.name, cfg.version, summary, f"gym-dream{requires}", ENTRY_POINT_GROUP, module,
                                         [CARD_FILE, WEIGHTS_FILE], "safetensors + JSON").encode(),
    }
    record = _read_record(project)
    for rel, data in generated.items():
        path = project / rel
        if path.exists() and _sha256(path.read_bytes()) not in (record.get(rel), _sha256(data)):
            kept.append(path)  # the user's edit (or a file export did not write): keep it
            generated[rel] = path.read_bytes()
            continue
        atomic_write_bytes(path, data)
    for f, data in model_files.items():
        atomic_write_bytes(pkg / f, data)
    init = _init_py(cfg.name, cfg.env_id).encode()
    atomic_write_bytes(pkg / "__init__.py", init)
    fresh = {rel: _sha256(data) for rel, data in generated.items() if project / rel not in kept}
    record.update(fresh)
    atomic_write_bytes(project / EXPORT_RECORD, (json.dumps({"generated": record}, indent=2) + "\n").encode())
    readme = generated["README.md"].decode("utf-8", errors="replace")
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {cfg.name}\n"
        f"Version: {cfg.version}\n"
        f"Summary: {summary}\n"
        "Requires-Python: >=3.10\n"
        f"Requires-Dist: gym-dream{requires}\n"
        "Description-Content-Type: text/markdown\n\n" + readme  # the body: after the blank line, no header can follow
    )
    entry_points = f"[{ENTRY_POINT_GROUP}]\n{cfg.name} = {module}\n"
    files = {f"{module}/__init__.py": init, **{f"{module}/{f}": data for f, data in model_files.items()}}
    wheel = build_wheel(files, cfg.name, cfg.version, metadata, entry_points, Path(cfg.out))
    return {"project": project, "wheel": wheel, "kept": kept}


def builtin_id_note(env_id: str, name: str | None = None) -> str | None:
    """A note when ``env_id`` is gym-dream's own id, or one an installed package already declares."""
    from gym_dream.envs.registry import packaged_ids

    others = [c for c in packaged_ids().get(env_id, []) if name is None or c.source != name]
    if others:
        who = ", ".join(f"{c.source} (model {c.model!r})" for c in others)
        return (f"{env_id} is already declared by the installed package(s) {who}: with this package installed too, "
                f"gym.make({env_id!r}) raises an error naming both until one is uninstalled. "
                f"To add a new env instead, export with another id, e.g. --env-id Dream-My{env_id[len('Dream-'):]}.")
    for d in BUILTIN_IDS:
        if d.env_id == env_id:
            return (f"{env_id} is one of gym-dream's own ids and no installed package provides its model yet: "
                    f"installing this package makes it the model behind {env_id}.")
    return None
