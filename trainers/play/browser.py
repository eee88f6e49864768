"""A headless Chromium driven by Playwright, for the play page's test and its step-rate benchmark.

The browser is the system's Chromium (Debian: ``apt-get install chromium``, ``/usr/bin/chromium``), never one that
Playwright downloads (``playwright install`` is not needed): :func:`missing` says what is absent, and
:func:`headless_page` opens a page in a fresh profile with the flags of a quiet, offline browser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

CHROMIUM = os.environ.get("GYM_DREAM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def missing() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'Playwright is not installed: pip install "gym-dream[dev]" (or pip install playwright; no playwright install needed)'
    if chromium_path() is None:
        return f"Chromium is not installed ({CHROMIUM}): apt-get install chromium, or set GYM_DREAM_CHROMIUM to its path"
    return None


@contextlib.contextmanager
def headless_page(viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A Playwright page in a headless Chromium with a fresh user-data-dir (removed afterwards); console errors are
    collected in ``page.console_errors``."""
    reason = missing()
    if reason is not None:
        raise RuntimeError(reason)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="gym-dream-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True, args=ARGS,
                                                       viewport={"width": viewport[0], "height": viewport[1]})
        try:
            page = context.new_page()
            page.console_errors = []
            page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page.console_errors.append(str(e)))
            yield page
        finally:
            context.close()


def open_play_page(page: Any, url: str, timeout_s: float = 120.0) -> None:
    """Load the play page at ``url`` and wait until its dream is loaded (or raise with the page's error)."""
    page.goto(url)
    page.wait_for_function("window.play && (window.play.ready || window.play.error)", timeout=timeout_s * 1000)
    error = page.evaluate("window.play.error")
    if error:
        raise RuntimeError(f"the play page failed: {error}")
