"""Progress bars (tqdm), quiet when not attached to a terminal unless asked."""

from __future__ import annotations

import os
import sys


def progress(total=None, desc: str = "", unit: str = "it", initial: int = 0, disable: bool | None = None):
    from tqdm.auto import tqdm

    if disable is None:
        disable = os.environ.get("GYM_DREAM_PROGRESS", "auto") == "0" or (
            os.environ.get("GYM_DREAM_PROGRESS", "auto") == "auto" and not sys.stderr.isatty()
        )
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, dynamic_ncols=True, mininterval=1.0)
