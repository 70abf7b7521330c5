"""What "open this" means for the window: plain functions run inside a worker.

A path may be an image file, a DICOM folder, a case folder or a dataset folder of many
cases.  These functions call the :mod:`livgui.imageio` facade and return either a
:class:`Loaded` case (volume plus label layers) or a :class:`Listing` of case references
for the case list.  They take ``progress=`` and ``cancel=`` like every heavy function and
know nothing of Qt, so tests and the screenshot command run them directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livgui.core.progress import ProgressFn, check_cancel, no_progress
from livgui.core.volume import LabelMap, Volume

__all__ = ["Listing", "Loaded", "load_labels_into", "load_path", "load_ref"]

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A case ready to show: layers are ``(name, kind, LabelMap)`` on the volume's grid."""

    case_id: str
    volume: Volume
    layers: list[tuple[str, str, LabelMap]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    source: str = ""


@dataclass
class Listing:
    """A folder holding several cases: the user picks one in the case list."""

    root: str
    refs: list[Any]


def _imageio() -> Any:
    from livgui import imageio

    return imageio


def _from_case(case: Any, source: str) -> Loaded:
    layers: list[tuple[str, str, LabelMap]] = []
    if getattr(case, "reference", None) is not None:
        layers.append(("reference", "reference", case.reference))
    if getattr(case, "prediction", None) is not None:
        layers.append(("prediction", "prediction", case.prediction))
    return Loaded(case.case_id, case.volume, layers, tuple(case.warnings), source)


def load_ref(
    ref: Any,
    *,
    labels: str | None = None,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> Loaded:
    """Load one dataset case (a ``CaseRef`` or a path ``load_case`` understands)."""
    case = _imageio().load_case(ref, progress=progress, cancel=cancel)
    loaded = _from_case(case, str(getattr(ref, "image_path", ref)))
    if labels:
        load_labels_into(loaded, labels)
    return loaded


def load_path(
    path: str | Path,
    *,
    series: Any = None,
    labels: str | None = None,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> Loaded | Listing:
    """Open a file, DICOM folder, case folder or dataset folder.

    A folder that the dataset layouts recognise opens as its case (or, with several
    cases, comes back as a :class:`Listing`); anything else is read as one image.
    ``imageio.SeriesChoiceRequired`` propagates when a folder holds several series and
    ``series`` was not given.
    """
    imageio = _imageio()
    p = Path(path)
    if series is None:
        refs = _cases_in(p)
        if len(refs) > 1:
            return Listing(str(p), refs)
        if len(refs) == 1:
            return load_ref(refs[0], labels=labels, progress=progress, cancel=cancel)
    volume = imageio.load_image(p, series=series, progress=progress, cancel=cancel)
    check_cancel(cancel)
    loaded = Loaded(volume.name or p.name, volume, [], tuple(_warnings_of(volume)), str(p))
    if labels:
        load_labels_into(loaded, labels)
    return loaded


def _cases_in(p: Path) -> list[Any]:
    """Cases the dataset layouts find at ``p`` (empty when it is not a known layout)."""
    imageio = _imageio()
    try:
        return list(imageio.list_cases(p))
    except Exception as exc:  # not a dataset layout: read it as one image instead
        log.info("%s: not a dataset layout (%s); reading it as one image", p, exc)
        return []


def _warnings_of(volume: Volume) -> tuple[str, ...]:
    return tuple(volume.source.warnings) if volume.source is not None else ()


def load_labels_into(loaded: Loaded, mask_path: str) -> None:
    """Read ``mask_path`` on the volume's grid and add it as a layer.

    It is the reference when the case has none; otherwise it is a prediction (compared
    with the case's reference in the metrics dock, drawn in the prediction colours).
    """
    mask = _imageio().load_mask(mask_path, like=loaded.volume)
    if not any(kind == "reference" for _n, kind, _m in loaded.layers):
        loaded.layers.append(("reference", "reference", mask))
        return
    taken = {n for n, _k, _m in loaded.layers}
    name = "prediction" if "prediction" not in taken else Path(mask_path).name
    loaded.layers.append((name, "prediction", mask))
