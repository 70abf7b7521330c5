"""Progress and cancellation types shared by every long-running function.

Heavy work is a plain function taking ``progress=`` and ``cancel=`` keywords; Qt workers,
the CLI and tests adapt these callables.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["CancelToken", "Cancelled", "ProgressFn", "check_cancel", "no_progress"]

#: ``progress(fraction_0_to_1, message)``
ProgressFn = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a long function when its cancel token was set."""


class CancelToken:
    """A thread-safe flag a caller sets to ask a worker to stop at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        return self._event.is_set()


def no_progress(fraction: float, message: str) -> None:
    """Progress sink that ignores everything."""


def check_cancel(cancel: Callable[[], bool] | None) -> None:
    """Raise :class:`Cancelled` when ``cancel()`` says so."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled by the user")
