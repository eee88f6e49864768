"""What long jobs say on the way (a run resumed, the losses of each epoch, a worker lost): records of the ``trainers``
logger, each module logging under its own name (``logging.getLogger(__name__)``).

The library adds no handler (Python's convention: the application decides where records go). ``gym-dream`` shows them
on stderr as plain lines (:func:`log_to_stderr`), so that stdout holds only what a command finds; a script shows them
with ``logging.basicConfig(level=logging.INFO)`` or by calling :func:`log_to_stderr` itself.
"""

from __future__ import annotations

import logging
import sys


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test's capture, a redirected stream)."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """The stream is always ``sys.stderr``'s."""


def log_to_stderr(level: int = logging.INFO) -> None:
    """Show the ``trainers`` logger's records of ``level`` and above on stderr, each as its message alone (once per
    process: calling it again changes only the level)."""
    logger = logging.getLogger("trainers")
    logger.setLevel(level)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
