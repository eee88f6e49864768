"""``gym-dream play MODEL``: drive a model's dream with the keyboard in a web page.

The dream is exported as ONNX graphs (as ``gym-dream export --runtime onnx`` does; cached) and stepped in the browser
by onnxruntime-web (vendored: nothing downloads at run time). The page draws the decoded frames (pixel models) or the
observation as bars, a plot and, for CartPole, a sketch (vector models), with reward, end probability, tau as a
slider, a reset, and the measured step rate. ``--compare`` puts the real env's first frame beside it; ``--build DIR``
writes the page as static files for any web host instead of serving it.

>>> from trainers.play import PlayConfig, play          # doctest: +SKIP
>>> play(PlayConfig(model="cartpole", port=8000))        # doctest: +SKIP   (serves until Ctrl-C)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PlayConfig", "play"]


@dataclass
class PlayConfig:
    model: str = ""
    """a shipped model's name (carracing, cartpole, doom-takecover, dmc-cartpole-swingup; gym-dream list) or a model
    directory"""
    port: int = 8000
    """the local port to serve the page on, at 127.0.0.1 (0: any free port)"""
    build: str | None = None
    """write the page as static files to this folder (new, empty, or an earlier build) and exit, instead of serving it"""
    compare: bool = False
    """show the real env's first frame (rendered by the real env at reset with --seed) beside the dream; needs the real
    env's extra (box2d, doom, dmc)"""
    seed: int = 0
    """the page's first seed (the dream's start state and noise) and the --compare frame's reset seed"""
    tau: float | None = None
    """the tau slider's first value (default: the card's dream_env.tau, else 1.0)"""
    fps: str = "30"
    """the page's first speed in steps per second, or max"""
    cache_dir: str | None = None
    """where exported dreams are cached (default: $XDG_CACHE_HOME/gym_dream/play, or $GYM_DREAM_HOME/cache/play)"""


def play(cfg: PlayConfig) -> Path | None:
    """Build the page of ``cfg.model``; with ``cfg.build`` write it there and return the folder, else serve it on
    127.0.0.1 until interrupted (prints the URL)."""
    from trainers.play.server import make_server, url_of
    from trainers.play.site import build_site

    if not cfg.model:
        raise ValueError("Name the model to play: gym-dream play carracing (a shipped name, see gym-dream list, or a model directory).")
    options = {"seed": cfg.seed, "tau": cfg.tau, "fps": str(cfg.fps), "compare": cfg.compare, "cache": cfg.cache_dir}
    if cfg.build:
        out = build_site(cfg.model, cfg.build, **options)
        print(f"wrote {out}: serve that folder from any static web host (e.g. python -m http.server -d {out})")
        return out
    with tempfile.TemporaryDirectory(prefix="gym-dream-play-") as tmp:
        site = build_site(cfg.model, Path(tmp) / "site", **options)
        server = make_server(site, cfg.port)
        print(f"playing {cfg.model}: open {url_of(server)} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # Ctrl-C is how a play ends, not an interrupted job
            print("stopped", flush=True)
        finally:
            server.server_close()
    return None
