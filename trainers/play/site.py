"""The play page as a folder of static files: the page (``web/``), the vendored onnxruntime-web, and the model's dream.

::

    <site>/index.html, play.js, dream.js, view.js, style.css  the page (trainers/play/web/)
    <site>/vendor/                                           onnxruntime-web's wasm build (trainers/play/vendor.py)
    <site>/model/dream.json, *.onnx                          the dream, exported as for `gym-dream export --runtime onnx`
    <site>/model/play.json                                   what the page needs besides: keys, labels, tau, horizon, seed
    <site>/model/real_first_frame.png                        with compare: the real env's frame at reset

The export (tens of seconds for a shipped model on 2 CPU cores) is cached by the model files' content
(:func:`cached_export`), so the second ``gym-dream play MODEL`` starts at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from gym_dream.checkpoint import CARD_FILE, read_card
from gym_dream.error import DependencyNotInstalled
from gym_dream.store import find_model_dir
from trainers.play.controls import SKETCHES, control_scheme, observation_labels
from trainers.play.vendor import vendored

WEB = Path(__file__).resolve().parent / "web"
PAGE_FILES = ("index.html", "play.js", "dream.js", "view.js", "style.css")
MODEL_DIR = "model"
PLAY_JSON = "play.json"
COMPARE_PNG = "real_first_frame.png"
#: the page's tau slider (a card's tau outside it widens it)
TAU_SLIDER = (0.05, 2.5, 0.05)


def cache_root() -> Path:
    """Where exported dreams are cached: ``$GYM_DREAM_HOME/cache/play``, else ``$XDG_CACHE_HOME/gym_dream/play``
    (``~/.cache/gym_dream/play``)."""
    home = os.environ.get("GYM_DREAM_HOME")
    if home:
        return Path(home).expanduser() / "cache" / "play"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "gym_dream" / "play"


def _export_key(model_dir: Path) -> str:
    import torch

    from trainers.export.onnx import FORMAT_VERSION, OPSET

    h = hashlib.sha256(f"format {FORMAT_VERSION} opset {OPSET} torch {torch.__version__}\n".encode())
    for name in (CARD_FILE, "model.safetensors"):
        h.update(name.encode() + b"\0" + (model_dir / name).read_bytes())
    return h.hexdigest()[:16]


def cached_export(model_dir: Path, cache: Path | None = None) -> Path:
    """The model's dream exported as ONNX graphs (``trainers.export.onnx.export_dream``), from the cache when the
    model's card and weights are the ones exported before; a new export is written beside and swapped into place."""
    try:
        import onnxscript  # noqa: F401  (the exporter's dependency: fail here with the extra to install)
    except ImportError as e:
        raise DependencyNotInstalled(f'gym-dream play exports the model to ONNX: pip install "gym-dream[onnx]" ({e})') from e
    from gym_dream.checkpoint import load_model
    from trainers.export.onnx import MANIFEST, export_dream
    from trainers.infra.checkpoints import replace_dir

    cache = cache_root() if cache is None else Path(cache)
    target = cache / f"{model_dir.resolve().name}-{_export_key(model_dir)}"
    if not (target / MANIFEST).is_file():  # written whole or not at all, readable as the umask allows
        replace_dir(target, lambda tmp: export_dream(load_model(model_dir), tmp, read_card(model_dir)))
    return target


def _tau_default(card: dict[str, Any], tau: float | None) -> float:
    if tau is not None:
        return float(tau)
    value = (card.get("dream_env") or {}).get("tau", 1.0)
    if isinstance(value, (list, tuple)) and len(value) == 2:  # a card's tau range: its middle
        value = (float(value[0]) + float(value[1])) / 2
    return round(float(value), 2)


def _vector_view(dream_dir: Path, env_id: str | None, seed: int) -> dict[str, Any]:
    """Labels of a vector observation and a scale for its bars: the 99th percentile of each dimension's magnitude (x1.25)
    over short dreams of random actions (32 start states, up to 60 steps each until the episode ends, tau 1, the numpy
    runtime), at least 1e-3."""
    from gym_dream_onnx import OnnxDream

    dream = OnnxDream(dream_dir, threads=1)
    rng = np.random.default_rng(seed)
    space = dream.action_space
    space.seed(seed)
    batch, steps = 32, 60
    state, _ = dream.initial_state(dream.draw_index(rng, batch))
    seen = [dream.decode(state).reshape(batch, -1)]
    alive = np.ones(batch, bool)
    for _ in range(steps):
        actions = np.stack([np.asarray(space.sample()) for _ in range(batch)])
        actions = actions.astype(np.int64) if actions.ndim == 1 else actions.reshape(batch, -1).astype(np.float32)
        out = dream.imagine(state, actions, np.ones(batch, np.float32), dream.draw_noise(rng, batch))
        state, alive = out["state"], alive & (out["termination_prob"].reshape(-1) <= 0.5)  # an episode's steps, not beyond
        seen.append(dream.decode(state).reshape(batch, -1)[alive])
    obs = np.abs(np.concatenate(seen).astype(np.float64))
    scale = np.maximum(np.quantile(obs, 0.99, axis=0) * 1.25, 1e-3)
    return {"labels": observation_labels(env_id, obs.shape[1]), "scale": [float(s) for s in scale],
            "sketch": SKETCHES.get(env_id or "")}


def page_config(model_dir: Path, dream_dir: Path, *, seed: int, tau: float | None, fps: str, compare: str | None) -> dict[str, Any]:
    """``play.json``: everything the page knows besides the dream's own manifest."""
    from gym_dream_onnx.dream import space_from_manifest

    manifest = json.loads((dream_dir / "dream.json").read_text())
    card = read_card(model_dir)
    real_id = manifest.get("real_env_id")
    dream_env = manifest.get("dream_env") or {}
    tau0 = _tau_default(card, tau)
    lo, hi, step = TAU_SLIDER
    config = {
        "title": model_dir.name.replace("_", "-"),
        "dream_id": dream_env.get("id"),
        "real_env_id": real_id,
        "family": manifest.get("family"),
        "pixels": bool(manifest["observation"]["pixels"]),
        "controls": control_scheme(space_from_manifest(manifest["action_space"]), real_id),
        "tau": {"value": tau0, "min": min(lo, tau0), "max": max(hi, tau0), "step": step},
        "termination": dream_env.get("termination", "threshold"),
        "max_episode_steps": dream_env.get("max_episode_steps"),
        "seed": int(seed),
        "fps": fps,
        "compare": compare,
        "onnxruntime_web": vendored()["version"],
    }
    if not config["pixels"]:
        config["observation"] = _vector_view(dream_dir, real_id, seed)
    return config


def _check_out(out: Path) -> None:
    """``out`` is new, empty, or an earlier play build (never another folder's files overwritten)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; give --build a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / MODEL_DIR / PLAY_JSON).is_file():
        raise FileExistsError(f"{out} is not empty and is not an earlier `gym-dream play --build`: give a new or empty folder.")


def build_site(model: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0, tau: float | None = None,
               fps: str = "30", compare: bool = False, cache: str | os.PathLike | None = None) -> Path:
    """Write the play page of ``model`` (a shipped name or a model directory) to ``out`` as static files; returns ``out``."""
    from trainers.play.compare import real_first_frame

    if fps != "max" and not (fps.isdigit() and 1 <= int(fps) <= 240):
        raise ValueError(f"--fps must be a whole number of steps per second in [1, 240] or 'max', got {fps!r}.")
    vendored()  # the runtime files are there and unchanged, before any minutes of export
    out = Path(out)
    _check_out(out)
    model_dir = find_model_dir(model)
    dream_dir = cached_export(model_dir, None if cache is None else Path(cache))
    with tempfile.TemporaryDirectory(prefix="gym-dream-play-") as tmp:  # the real env first: its error leaves no half-built page
        picture = None
        if compare:
            caption = real_first_frame(read_card(model_dir), seed, Path(tmp) / COMPARE_PNG)
            picture = {"image": COMPARE_PNG, "caption": caption}
        config = page_config(model_dir, dream_dir, seed=seed, tau=tau, fps=fps, compare=picture)
        _write_site(out, dream_dir, Path(tmp) / COMPARE_PNG if compare else None, config)
    return out


def _write_site(out: Path, dream_dir: Path, compare_png: Path | None, config: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(WEB / name, out / name)
    shutil.rmtree(out / "vendor", ignore_errors=True)
    shutil.copytree(WEB / "vendor", out / "vendor")
    shutil.rmtree(out / MODEL_DIR, ignore_errors=True)
    shutil.copytree(dream_dir, out / MODEL_DIR)
    if compare_png is not None:
        shutil.copyfile(compare_png, out / MODEL_DIR / COMPARE_PNG)
    (out / MODEL_DIR / PLAY_JSON).write_text(json.dumps(config, indent=2) + "\n")
