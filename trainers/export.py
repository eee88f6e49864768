"""Turn a trained model into a pip-installable environment package (``gym-dream export``).

The package holds data only: ``model.safetensors`` + ``model.json`` as package data, an empty
``__init__.py`` and an entry point in the ``gym_dream.models`` group naming the package. gym_dream
finds the files through that entry point without importing the package, reads the card's
``dream_env`` section and registers the id, so after ``pip install`` of the wheel
``import gym_dream; gym.make("Dream-MyGame-v0")`` works with no other step. Installing a wheel
runs no code, and loading reads JSON and safetensors only.

The wheel is written directly (a wheel is a zip with a few metadata files), so exporting needs no
build tool and no network. The project folder written next to it is a normal setuptools project:
edit its README and rebuild it with ``pip wheel`` if you like.

gym-dream's own bundled models are staged by :func:`stage_model_dir`, exactly as an exported
package's model is, and found through the same entry-point group.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gym_dream import __version__
from gym_dream.checkpoint import CARD_FILE, WEIGHTS_FILE, load_model, read_card, save_model
from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.envs.registry import BUILTIN_IDS
from gym_dream.store import ENTRY_POINT_GROUP
from gym_dream.versions import compatible_range

ENV_ID = re.compile(r"^[A-Za-z][\w.-]*-v\d+$")
DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
WHEEL_VERSION = re.compile(r"^\d+(\.\d+)*$")
# card fields written by staging (the rest of the card is the model's own documentation)
MANAGED_FIELDS = ("dream_env", "requires_gym_dream")


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


def module_name(dist_name: str) -> str:
    """The import name for a distribution name (``dream-mygame`` -> ``dream_mygame``)."""
    return re.sub(r"[-.]+", "_", dist_name).lower()


def _check(cfg: ExportConfig) -> None:
    if not cfg.model_dir:
        raise ValueError("Give the model directory to export: gym-dream export MODEL_DIR --env-id Dream-MyGame-v0 --name dream-mygame")
    if not ENV_ID.match(cfg.env_id or ""):
        raise ValueError(f"--env-id must be a versioned Gymnasium id such as 'Dream-MyGame-v0', got {cfg.env_id!r}.")
    if not DIST_NAME.match(cfg.name or ""):
        raise ValueError(f"--name must be a valid package name (letters, digits, '-', '_', '.'), e.g. 'dream-mygame'; got {cfg.name!r}.")
    if module_name(cfg.name) in ("gym_dream", "trainers"):
        raise ValueError(f"--name {cfg.name!r} would shadow gym-dream's own packages; pick another name.")
    if not WHEEL_VERSION.match(cfg.version):
        raise ValueError(f"--version must be numeric, like '0.1.0'; got {cfg.version!r}.")
    if cfg.max_episode_steps is not None and cfg.max_episode_steps < 1:
        raise ValueError(f"--max-episode-steps must be >= 1, got {cfg.max_episode_steps}.")


def stage_model_dir(model_dir: str | Path, dest: str | Path, env_id: str, max_episode_steps: int | None = None,
                    half: bool = False, requires: str | None = None) -> Path:
    """Copy a model into ``dest`` as a package's model: weights (optionally fp16) and the card with its
    ``dream_env`` id and the gym-dream range it needs. The model is fully loaded first, so a broken
    model is refused here rather than after someone installs it."""
    model_dir, dest = Path(model_dir), Path(dest)
    card = read_card(model_dir)
    model = load_model(model_dir)  # checks every tensor against the card
    horizon = max_episode_steps or (card.get("env") or {}).get("max_episode_steps")
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
    """Write evaluation rows (from :func:`trainers.evaluate.evaluate`) into a model card's ``scores``."""
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


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def card_readme(card: dict[str, Any], dist: str, env_id: str) -> str:
    """A package README from a model card: usage, what the model is, its data, compute and scores."""
    env = card.get("env") or {}
    data = card.get("data") or {}
    training = card.get("training") or {}
    heldout = training.get("heldout") or {}
    lines = [
        f"# {dist}: `{env_id}`",
        "",
        card.get("description") or f"A {card['family']} world model of {env.get('id', 'an environment')}, as a Gymnasium environment.",
        "",
        "## Use",
        "",
        "```python",
        "import gymnasium as gym",
        "import gym_dream  # registers the ids of every installed model package",
        "",
        f'env = gym.make("{env_id}", tau=1.0)             # one dream',
        f'envs = gym.make_vec("{env_id}", num_envs=1024,   # one batched tensor program',
        '                     vectorization_mode="vector_entry_point")',
        "```",
        "",
        f"An agent trained here acts on the real `{env.get('id', '?')}` through "
        "`gym_dream.wrappers.DreamObservation(real_env, model)`; this package's model is also reachable by name: "
        f"`gym_dream.resolve_model(\"{dist}\")`.",
        "",
        "## The model",
        "",
        f"- family: `{card['family']}`; model format version {card['format_version']}; made with gym-dream "
        f"{card.get('gym_dream_version', '?')}; needs gym-dream `{card.get('requires_gym_dream', '?')}`",
        f"- real env: `{env.get('id', '?')}`; dream horizon {card.get('dream_env', {}).get('max_episode_steps', '?')} steps",
        f"- observation space `{card['observation_space'].get('type')}` {card['observation_space'].get('shape', '')}, "
        f"action space `{card['action_space'].get('type')}` {card['action_space'].get('shape', card['action_space'].get('n', ''))}",
        f"- preprocessing: `{json.dumps(card['preprocessing'])}`",
        f"- weights: {card.get('weights', {}).get('dtype', '?')}, safetensors (no code is executed on loading)",
        f"- parameters: `{json.dumps(card['params'])}`",
    ]
    if data:
        lines += ["", "## Data", ""] + [f"- {k}: {_fmt(v)}" for k, v in data.items()]
    if training:
        lines += ["", "## Training", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in training.items() if k not in ("heldout", "hyperparameters")]
        if training.get("hyperparameters"):
            lines.append(f"- hyperparameters: `{json.dumps(training['hyperparameters'])}`")
        for part, metrics in heldout.items():
            if metrics:
                lines.append(f"- held-out {part}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()))
    scores = card.get("scores") or {}
    lines += ["", "## Scores", ""]
    if scores:
        lines += [f"- {k}: {json.dumps(v) if isinstance(v, (dict, list)) else _fmt(v)}" for k, v in scores.items()]
    else:
        lines.append("No scores recorded in the model card.")
    if card.get("reproduce"):
        lines += ["", "## Reproduce", "", f"`{card['reproduce']}`"]
    return "\n".join(lines) + "\n"


def _pyproject(cfg: ExportConfig, module: str, requires: str, summary: str) -> str:
    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{cfg.name}"
version = "{cfg.version}"
description = {json.dumps(summary)}
readme = "README.md"
requires-python = ">=3.10"
# the gym-dream runtime only: the package is data (safetensors + JSON)
dependencies = ["gym-dream{requires}"]

# gym_dream's model store reads this group; the card in the package names the env id
[project.entry-points."{ENTRY_POINT_GROUP}"]
{json.dumps(cfg.name)} = "{module}"

[tool.setuptools]
packages = ["{module}"]
package-dir = {{"" = "src"}}

[tool.setuptools.package-data]
{module} = ["{CARD_FILE}", "{WEIGHTS_FILE}"]
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


def export(cfg: ExportConfig) -> dict[str, Path]:
    """Write the package project to ``<out>/<name>/`` and its wheel to ``<out>/``; returns both paths."""
    _check(cfg)
    module = module_name(cfg.name)
    project = Path(cfg.out) / cfg.name
    pkg = project / "src" / module
    if pkg.exists():
        shutil.rmtree(pkg)  # regenerated from the model (the project holds no user data)
    stage_model_dir(cfg.model_dir, pkg, cfg.env_id, cfg.max_episode_steps, cfg.half, cfg.requires)
    card = read_card(pkg)
    requires = card["requires_gym_dream"]
    summary = f"{cfg.env_id}: a gym-dream world-model environment of {(card.get('env') or {}).get('id', 'an environment')}"
    readme = card_readme(card, cfg.name, cfg.env_id)
    (pkg / "__init__.py").write_text(_init_py(cfg.name, cfg.env_id))
    (project / "README.md").write_text(readme)
    (project / "pyproject.toml").write_text(_pyproject(cfg, module, requires, summary))
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {cfg.name}\n"
        f"Version: {cfg.version}\n"
        f"Summary: {summary}\n"
        "Requires-Python: >=3.10\n"
        f"Requires-Dist: gym-dream{requires}\n"
        "Description-Content-Type: text/markdown\n\n" + readme
    )
    entry_points = f"[{ENTRY_POINT_GROUP}]\n{cfg.name} = {module}\n"
    files = {f"{module}/{f}": (pkg / f).read_bytes() for f in ("__init__.py", CARD_FILE, WEIGHTS_FILE)}
    wheel = build_wheel(files, cfg.name, cfg.version, metadata, entry_points, Path(cfg.out))
    return {"project": project, "wheel": wheel}


def builtin_id_note(env_id: str) -> str | None:
    """A note when ``env_id`` is one of gym-dream's own ids (a package may provide its model)."""
    for d in BUILTIN_IDS:
        if d.env_id == env_id:
            return (f"{env_id} is one of gym-dream's own ids: installing this package makes it the model behind "
                    f"{env_id} (if another installed package also declares it, making the env raises an error naming both).")
    return None
