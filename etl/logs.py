"""Logging for grec's commands: the records of the `etl` and `training` loggers go to stderr as
`[grec HH:MM:SS] message`. Each command-line entry point calls configure_logging(); library use
(a notebook, a test) leaves logging to the caller, as Python's convention is. JVM-free.
"""
from __future__ import annotations

import logging
import sys

FORMAT = "[grec %(asctime)s] %(message)s"
LOGGERS = ("etl", "training")


class _CurrentStderr(logging.StreamHandler):
    """Writes to sys.stderr as it is at each record, so a redirected or captured stderr (pytest's
    capsys, a notebook's cell output) receives it, not the stream of the moment of set-up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: int = logging.INFO) -> None:
    """Send grec's log records at `level` and above to stderr; calling it again changes nothing."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
            handler = _CurrentStderr()
            handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False  # a root handler set up by the host would print each record twice
