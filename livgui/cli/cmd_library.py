"""``livgui library add PATH`` and ``livgui library list``: the case library from a shell.

The library folder is ``--library DIR``, else the environment variable ``LIVGUI_LIBRARY``,
else ``platformdirs.user_data_dir("livgui")/library``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from livgui.cli.main import emit_json
from livgui.library import STATUSES, Library

__all__ = ["add_parser", "default_library_dir", "run_add", "run_list"]

log = logging.getLogger(__name__)


def default_library_dir() -> Path:
    """``$LIVGUI_LIBRARY`` or the per-user data folder's ``library``."""
    env = os.environ.get("LIVGUI_LIBRARY")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("livgui")) / "library"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "library",
        help="add cases to the case library or list them",
        description="The case library: a folder per case plus a SQLite catalogue. "
        "Sources are referenced, never copied or written.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a file, a case folder or a dataset folder")
    add.add_argument("path", type=Path)
    add.set_defaults(func=run_add)
    lst = verbs.add_parser("list", help="list the cases in the library")
    lst.add_argument("--status", choices=STATUSES, help="only cases with this status")
    lst.set_defaults(func=run_list)
    for sub in (add, lst):
        sub.add_argument("--library", type=Path, default=None, help="library folder")


def _root(args: argparse.Namespace) -> Path:
    return Path(args.library) if args.library is not None else default_library_dir()


def run_add(args: argparse.Namespace) -> int:
    """Add the cases under ``args.path``; exit 1 when nothing could be listed."""
    if not Path(args.path).exists():
        raise FileNotFoundError(f"{args.path}: no such file or folder")
    with Library.open(_root(args)) as lib:
        report = lib.add_path(args.path, progress=lambda f, m: log.info("%3.0f%% %s", 100 * f, m))
        emit_json({"command": "library add", "library": str(lib.root), **report.to_json()})
    return 1 if report.errors else 0


def run_list(args: argparse.Namespace) -> int:
    with Library.open(_root(args)) as lib:
        cases = [c.to_json() for c in lib.list_cases(status=args.status)]
        emit_json({"command": "library list", "library": str(lib.root), "cases": cases})
    return 0
