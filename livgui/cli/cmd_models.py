"""``livgui models``: installed bundles and registered architectures, as JSON.

``--install FOLDER`` copies a bundle into the per-user store (re-verified), ``--remove
NAME`` deletes a user bundle; bundled defaults are read-only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from livgui.cli.main import emit_json
from livgui.models.registry import available
from livgui.models.store import ModelStore

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "models",
        help="list installed model bundles and registered architectures",
        description="JSON listing of the model bundles in the user store "
        "($LIVGUI_MODELS_DIR or the per-user data folder) and the bundled defaults, "
        "and of the network architectures a bundle may name.",
    )
    p.add_argument("--install", type=Path, metavar="FOLDER", help="install a bundle folder")
    p.add_argument("--remove", metavar="NAME", help="remove a user bundle")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = ModelStore()
    actions: dict[str, Any] = {}
    if args.install is not None:
        installed = store.install_folder(args.install)
        actions["installed"] = installed.model_id
    if args.remove:
        store.remove(args.remove)
        actions["removed"] = args.remove
    emit_json(
        {
            "command": "models",
            **actions,
            "user_dir": str(store.user),
            "bundled_dir": str(store.bundled),
            "bundles": [e.to_json() for e in store.entries()],
            "architectures": available(),
        }
    )
    return 0
