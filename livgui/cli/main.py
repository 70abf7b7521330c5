"""Headless command line: ``livgui <command> ...``; JSON on stdout, errors on stderr.

Each command lives in its own module exposing ``add_parser(subparsers)`` which registers a
sub-parser whose ``func(args) -> int`` runs it.  Add new modules to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from livgui import __version__
from livgui.core.volume import RESEARCH_NOTICE

__all__ = ["COMMAND_MODULES", "build_parser", "emit_json", "main", "run_headless"]

#: modules under livgui.cli providing add_parser(subparsers)
COMMAND_MODULES: list[str] = ["cmd_info", "cmd_metrics", "cmd_library", "cmd_segment", "cmd_models"]

log = logging.getLogger("livgui")


def emit_json(payload: dict[str, Any]) -> None:
    """Print one JSON document to stdout, tagged with the research-use notice."""
    doc = {"notice": RESEARCH_NOTICE, **payload}
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livgui",
        description=f"LivGUI {__version__}: liver CT review ({RESEARCH_NOTICE}).",
    )
    parser.add_argument("--version", action="version", version=f"livgui {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        module = importlib.import_module(f"livgui.cli.{mod_name}")
        module.add_parser(sub)
    return parser


def run_headless(argv: Sequence[str]) -> int:
    """Parse and run a headless command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        sys.stderr.write("livgui: interrupted\n")
        return 130
    except Exception as exc:  # a clear message and a non-zero exit, never a traceback
        log.debug("command failed", exc_info=True)
        sys.stderr.write(f"livgui {args.command}: error: {exc}\n")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_headless(sys.argv[1:] if argv is None else argv)
