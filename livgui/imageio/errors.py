"""Errors raised by readers and writers: always name the file and the problem."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ImageReadError", "ImageWriteError", "MissingDecoderError"]


class ImageReadError(Exception):
    """A file or folder could not be read as an image or mask.

    ``str(err)`` reads ``"<path>: <problem>"`` so it can be shown to the user as is.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MissingDecoderError(ImageReadError):
    """Pixel data uses a compressed transfer syntax for which no decoder is installed."""

    def __init__(self, path: str | Path, syntax: str, install_hint: str) -> None:
        self.syntax = syntax
        self.install_hint = install_hint
        super().__init__(path, f"this series is {syntax}: install {install_hint} to read it")


class ImageWriteError(Exception):
    """A mask could not be written; the previous file at the target is unchanged."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"could not save {self.path}: {problem}")
