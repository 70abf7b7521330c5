"""An explicit registry of network architectures.

A bundle manifest may only name a key of this registry; nothing read from disk is ever
resolved to a Python object any other way (no pickle, eval or dotted-path lookups).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["UnknownArchitecture", "available", "build", "register"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DOC: dict[str, str] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


class UnknownArchitecture(KeyError):
    """The requested architecture key is not registered."""


def register(name: str, summary: str = "") -> Callable[[F], F]:
    """Class/function decorator registering a network builder under ``name``."""

    def deco(builder: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = builder
        doc_lines = (builder.__doc__ or "").strip().splitlines()
        _DOC[name] = summary or (doc_lines[0] if doc_lines else "")
        return builder

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers the built-in networks.
    import livgui.models  # noqa: F401


def build(name: str, **hparams: Any) -> nn.Module:
    """Instantiate the architecture ``name`` with keyword hyper-parameters."""
    _ensure_loaded()
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise UnknownArchitecture(
            f"unknown architecture {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return builder(**hparams)


def available() -> dict[str, str]:
    """Registered keys with a one-line summary each."""
    _ensure_loaded()
    return dict(sorted(_DOC.items()))
