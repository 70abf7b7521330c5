"""``livgui models``: installed bundles and registered architectures, as JSON.

``livgui models install FOLDER`` copies a bundle folder (``manifest.json`` +
``weights.safetensors``) into the per-user store, re-verified; ``livgui models remove
NAME`` deletes a user bundle (bundled defaults are read-only).  ``livgui models`` or
``livgui models list`` only lists.  The older ``--install FOLDER`` / ``--remove NAME``
flags do the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from livgui.cli.main import emit_json

__all__ = ["add_parser", "run"]

ACTIONS = ("list", "install", "remove")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "models",
        help="list, install or remove model bundles; list the architectures",
        description="JSON listing of the model bundles in the user store "
        "($LIVGUI_MODELS_DIR or the per-user data folder) and the bundled defaults, "
        "and of the network architectures a bundle may name.  "
        "`livgui models install FOLDER` installs a bundle folder, "
        "`livgui models remove NAME` removes a user bundle.",
    )
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS)
    p.add_argument("target", nargs="?", metavar="FOLDER|NAME", help="bundle folder or name")
    p.add_argument("--install", type=Path, metavar="FOLDER", help="install a bundle folder")
    p.add_argument("--remove", metavar="NAME", help="remove a user bundle")
    p.set_defaults(func=run)


def _requests(args: argparse.Namespace) -> tuple[Path | None, str | None]:
    install, remove = args.install, args.remove
    if args.action == "list":
        if args.target:
            raise ValueError("`livgui models list` takes no argument")
        return install, remove
    if not args.target:
        what = "a bundle FOLDER" if args.action == "install" else "a bundle NAME"
        raise ValueError(f"`livgui models {args.action}` needs {what}")
    if args.action == "install":
        return Path(args.target), remove
    return install, str(args.target)


def run(args: argparse.Namespace) -> int:
    install, remove = _requests(args)
    from livgui.models.registry import available  # torch only when the command runs
    from livgui.models.store import ModelStore

    store = ModelStore()
    actions: dict[str, Any] = {}
    if install is not None:
        if not install.exists():
            raise FileNotFoundError(f"{install}: no such bundle folder")
        installed = store.install_folder(install)
        actions["installed"] = installed.model_id
        actions["installed_path"] = str(installed.path)
    if remove:
        store.remove(remove)
        actions["removed"] = remove
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
