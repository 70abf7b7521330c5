"""Where bundles live: a per-user data folder plus read-only bundled defaults.

* user bundles: ``$LIVGUI_MODELS_DIR`` if set, else ``<platformdirs user data>/livgui/models``
  (``~/.local/share/livgui/models`` when platformdirs is not installed, e.g. on a bare
  GPU machine with torch, numpy and safetensors only);
* bundled defaults: ``$LIVGUI_BUNDLED_MODELS`` if set, else ``resources/models`` of the
  checkout or of the frozen application; never written.

A user bundle shadows a bundled one of the same name.  Bundles are written atomically by
:func:`livgui.models.bundle.save_bundle`; folders starting with ``.`` (temporary or
half-written) are never listed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from livgui.models.bundle import Bundle, BundleError, load_bundle, save_bundle

__all__ = ["BundleEntry", "ModelStore", "bundled_models_dir", "user_models_dir"]

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def user_models_dir() -> Path:
    """The per-user folder for installed bundles (not created here)."""
    env = os.environ.get("LIVGUI_MODELS_DIR")
    if env:
        return Path(env)
    try:
        import platformdirs
    except ImportError:  # bare inference machine: fall back to the XDG default
        return Path.home() / ".local" / "share" / "livgui" / "models"
    return Path(platformdirs.user_data_dir("livgui", appauthor=False)) / "models"


def bundled_models_dir() -> Path:
    """Read-only default bundles shipped with the application."""
    env = os.environ.get("LIVGUI_BUNDLED_MODELS")
    if env:
        return Path(env)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources" / "models"
    return Path(__file__).resolve().parents[2] / "resources" / "models"


@dataclass(frozen=True)
class BundleEntry:
    """One folder found in a store: the parsed bundle, or why it is unusable."""

    name: str
    path: Path
    source: str  # "user" or "bundled"
    bundle: Bundle | None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": str(self.path), "source": self.source}
        if self.bundle is None:
            out["error"] = self.error
            return out
        b = self.bundle
        out.update(
            model_id=b.model_id,
            architecture=b.architecture,
            stage=b.stage,
            labels={str(k): v for k, v in b.labels.items()},
            hyperparameters=b.hyperparameters,
            preprocessing=b.preprocessing.to_json(),
            provenance=b.provenance,
            metrics=b.metrics,
        )
        return out


def check_name(name: str) -> str:
    """Bundle names become folder names: letters, digits, ``_ . -`` only."""
    if not _NAME.match(name) or name in (".", ".."):
        raise BundleError(name, "bundle names may use letters, digits, '_', '.', '-' only")
    return name


class ModelStore:
    """Lists, finds and installs bundles; ``user`` is writable, ``bundled`` read-only."""

    def __init__(self, user: Path | None = None, bundled: Path | None = None) -> None:
        self.user = user if user is not None else user_models_dir()
        self.bundled = bundled if bundled is not None else bundled_models_dir()

    def _scan(self, folder: Path, source: str) -> list[BundleEntry]:
        if not folder.is_dir():
            return []
        out = []
        for sub in sorted(folder.iterdir()):
            if sub.name.startswith(".") or not sub.is_dir():
                continue
            try:
                out.append(BundleEntry(sub.name, sub, source, load_bundle(sub)))
            except BundleError as exc:
                out.append(BundleEntry(sub.name, sub, source, None, str(exc)))
        return out

    def entries(self) -> list[BundleEntry]:
        """Every bundle folder, user ones first; unusable ones carry their error."""
        return self._scan(self.user, "user") + self._scan(self.bundled, "bundled")

    def names(self) -> list[str]:
        """Names of the usable bundles (user shadows bundled)."""
        return sorted({e.name for e in self.entries() if e.bundle is not None})

    def find(self, name: str) -> Bundle:
        """The bundle called ``name``; a path (absolute, or with a separator) to a bundle
        folder is also accepted.  Installed names win over folders in the working
        directory, and names may contain dots (``liver_v1.2``)."""
        as_path = Path(name)
        if as_path.is_absolute() or (("/" in name or os.sep in name) and as_path.is_dir()):
            return load_bundle(as_path)
        for folder in (self.user, self.bundled):
            candidate = folder / check_name(name)
            if candidate.is_dir():
                return load_bundle(candidate)
        known = ", ".join(self.names()) or "none installed"
        raise BundleError(name, f"no model bundle of that name (installed: {known})")

    def install(self, bundle: Bundle, model: nn.Module) -> Bundle:
        """Save ``model`` under ``bundle.name`` in the user folder (atomic, verified)."""
        return save_bundle(bundle, model, self.user / check_name(bundle.name))

    def install_folder(self, folder: Path) -> Bundle:
        """Copy an existing bundle folder in (re-verified through a fresh save)."""
        from livgui.models.bundle import build_model

        bundle = load_bundle(folder)
        return self.install(bundle, build_model(bundle))

    def remove(self, name: str) -> None:
        """Delete a user bundle (bundled defaults cannot be removed)."""
        target = self.user / check_name(name)
        if not target.is_dir():
            raise BundleError(target, "no user bundle of that name")
        shutil.rmtree(target)
