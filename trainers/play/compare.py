"""``gym-dream play --compare``: the real env's first frame, rendered by the real env at reset, as a PNG beside the dream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def real_first_frame(card: dict[str, Any], seed: int, out: Path) -> str:
    """Make the model's real env (its id and kwargs from the card), ``reset(seed=seed)``, write ``render()`` to ``out``
    as a PNG, and return a caption. A missing optional dependency fails with the extra to install."""
    import imageio.v2 as imageio

    from trainers.data.real_envs import make_real_env

    env_card = card.get("env") if isinstance(card.get("env"), dict) else {}
    env_id = env_card.get("id")
    if not isinstance(env_id, str):
        raise ValueError("--compare needs the model's real env, and this model card names none (its env.id is missing).")
    kwargs = dict(env_card.get("kwargs") or {})
    if not env_id.startswith("dm_control/"):  # make_dmc renders rgb_array frames itself
        kwargs["render_mode"] = "rgb_array"
    env = make_real_env(env_id, **kwargs)
    try:
        env.reset(seed=int(seed))
        frame = env.render()
    finally:
        env.close()
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] not in (3, 4):
        raise ValueError(f"{env_id}.render() gave {frame.dtype} {frame.shape}, not an RGB frame: --compare needs an env "
                         "that renders rgb_array images.")
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, frame, format="png")
    return f"{env_id}, reset(seed={int(seed)}): the real env's first frame ({frame.shape[1]}x{frame.shape[0]})"
