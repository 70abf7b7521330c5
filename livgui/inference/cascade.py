"""The liver -> lesion cascade (and the one-stage mode) on a :class:`Volume`.

Stage 1 (liver) runs over the whole volume at the liver bundle's coarse in-plane grid;
the largest connected component is kept (on that grid: removed components get zero
probability) and the probabilities are resampled back to the image grid.  The liver box
plus a margin in mm is cropped; stage 2 (lesion) runs inside the crop on the
liver-masked image (voxels outside the liver become the window's low end, as the study
masked its slices), at its own grid; lesions are constrained to the liver and merged back
into a 0/1/2 :class:`LabelMap` on the original grid.  The one-stage mode runs a single
network predicting 0/1/2.

Nothing is returned until everything succeeded: cancel (:class:`Cancelled`) or an error
leaves the caller's labels untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from livgui.core.progress import ProgressFn, check_cancel
from livgui.core.volume import LESION, RESEARCH_NOTICE, LabelMap, Volume
from livgui.inference.components import bounding_box, largest_component
from livgui.inference.device import DeviceChoice, choose_device
from livgui.inference.predictor import InferenceError, PredictOptions, Predictor
from livgui.models.bundle import Bundle, build_model
from livgui.models.preprocess import resize_planes

__all__ = [
    "CascadeOptions",
    "SegmentationResult",
    "Segmenter",
    "check_input",
    "probabilities_to_labels",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CascadeOptions:
    """Settings of one segmentation run.

    Attributes
    ----------
    margin_mm
        Margin added around the stage-1 liver box before cropping for stage 2 (mm).
    device, precision
        See :func:`livgui.inference.device.choose_device`.
    non_finite
        ``"refuse"`` NaN/Inf input, or ``"replace"`` them (NaN -> window low end,
        +/-Inf -> the finite max/min) with a logged notice.
    use_scipy
        Largest component via scipy (``None``: when installed) or the numpy fallback.
    predict
        Batching and sliding-window options.
    """

    margin_mm: float = 10.0
    device: str = "auto"
    precision: str = "auto"
    non_finite: str = "refuse"
    use_scipy: bool | None = None
    predict: PredictOptions = field(default_factory=PredictOptions)


@dataclass
class SegmentationResult:
    """A finished segmentation: labels on the image grid and how they were made."""

    labels: LabelMap
    timings_s: dict[str, float]
    model_ids: dict[str, str]
    device: str
    notices: list[str]

    def to_json(self) -> dict[str, Any]:
        counts = np.bincount(self.labels.data.reshape(-1), minlength=3)
        ml = self.labels.geometry.voxel_volume_ml
        return {
            "notice": RESEARCH_NOTICE,
            "models": dict(self.model_ids),
            "device": self.device,
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "notices": list(self.notices),
            "volumes_ml": {
                "liver": float((counts[1] + counts[2]) * ml),
                "lesion": float(counts[2] * ml),
            },
        }


class _Phases:
    """Maps sub-task progress into the overall [0, 1] range and times the phases."""

    def __init__(self, progress: ProgressFn | None, cancel: Callable[[], bool] | None) -> None:
        self.progress = progress
        self.cancel = cancel
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._start = time.perf_counter()

    def sub(self, lo: float, hi: float, label: str) -> ProgressFn:
        def report(fraction: float, message: str) -> None:
            check_cancel(self.cancel)
            if self.progress is not None:
                self.progress(lo + (hi - lo) * min(max(fraction, 0.0), 1.0), f"{label}: {message}")

        return report

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._t0
        self._t0 = now

    def total(self) -> dict[str, float]:
        return {**self.timings, "total": time.perf_counter() - self._start}


def check_input(volume: Volume, non_finite: str) -> tuple[NDArray[Any], list[str]]:
    """The HU array to feed, refusing or replacing NaN/Inf (RELIABILITY row 4).

    Volumes flagged with non-uniform slice spacing by their reader are refused: a 2.5D
    network or a 3D window would read neighbours at the wrong distance.
    """
    source = volume.source
    if source is not None and source.header.get("nonuniform"):
        raise InferenceError(
            f"{source.path}: non-uniform slice spacing; resample the series before segmenting"
        )
    if not volume.has_non_finite():
        return volume.data, []
    bad = int(np.count_nonzero(~np.isfinite(volume.data)))
    where = source.path if source is not None else volume.name or "volume"
    if non_finite != "replace":
        raise InferenceError(f"{where}: {bad} voxels are NaN/Inf; refusing to segment")
    lo, hi = volume.finite_range()
    data = np.nan_to_num(volume.data.astype(np.float32), nan=-1024.0, posinf=hi, neginf=lo)
    note = f"{bad} NaN/Inf voxels replaced (NaN -> -1024 HU, +/-Inf -> {hi:g}/{lo:g} HU)"
    log.warning("%s: %s", where, note)
    return data, [note]


def probabilities_to_labels(
    probs: NDArray[np.float16],
    shape_yx: tuple[int, int],
    device: torch.device,
    progress: ProgressFn | None = None,
) -> NDArray[np.uint8]:
    """Resample ``[z, K-1, rows, cols]`` class probabilities to ``shape_yx`` and argmax.

    Class 0's probability is ``1 - sum``; the result ``[z, y, x]`` holds class indices.
    """
    depth = probs.shape[0]
    out = np.empty((depth, *shape_yx), dtype=np.uint8)
    step = max(1, int(4e6 // max(1, shape_yx[0] * shape_yx[1] * probs.shape[1])))
    for z in range(0, depth, step):
        p = torch.from_numpy(probs[z : z + step].astype(np.float32)).to(device)
        p = resize_planes(p, shape_yx)
        out[z : z + step] = _argmax_with_background(p).cpu().numpy()
        if progress is not None:
            progress(min(1.0, (z + step) / depth), "resampling to the image grid")
    return out


def _argmax_with_background(p: torch.Tensor) -> torch.Tensor:
    """Class index ``[n, y, x]`` (uint8) from class 1..K-1 probabilities ``[n, K-1, y, x]``.

    Written as running comparisons (first maximum wins, like argmax): torch's argmax over
    the channel axis is several times slower on the CPU.
    """
    best = 1 - p.sum(dim=1)
    label = torch.zeros(best.shape, dtype=torch.uint8, device=p.device)
    for c in range(p.shape[1]):
        better = p[:, c] > best
        label[better] = c + 1
        best = torch.maximum(best, p[:, c])
    return label


def _margin_box(
    mask: NDArray[np.bool_],
    spacing: tuple[float, float, float],
    margin_mm: float,
    tick: Callable[[], None] | None = None,
) -> tuple[slice, slice, slice] | None:
    box = bounding_box(mask, tick)
    if box is None:
        return None
    out = []
    for s, sp, n in zip(box, spacing, mask.shape, strict=True):
        pad = int(np.ceil(margin_mm / sp))
        out.append(slice(max(0, s.start - pad), min(n, s.stop + pad)))
    return (out[0], out[1], out[2])


def _merge_lesions(
    probs: NDArray[np.float16],
    target: NDArray[np.uint8],
    keep: NDArray[np.bool_],
    device: torch.device,
    progress: ProgressFn,
) -> None:
    """Resample stage-2 probabilities chunk by chunk and mark lesions inside the liver.

    ``target`` (a view of the output map over the crop, ``[z, y, x]``) gets ``LESION``
    where the lesion class wins and ``keep`` (the liver) holds.  Chunked so progress
    and cancel come between chunks and no crop-sized label array is allocated.
    """
    depth = probs.shape[0]
    step = max(1, int(4e6 // max(1, keep.shape[1] * keep.shape[2] * probs.shape[1])))
    for z in range(0, depth, step):
        lesion = probabilities_to_labels(probs[z : z + step], keep.shape[1:], device)
        target[z : z + step][(lesion == 1) & keep[z : z + step]] = LESION
        progress(min(1.0, (z + step) / depth), "marking lesions inside the liver")


def _check_stage(bundle: Bundle, stage: str, classes: int) -> None:
    if bundle.stage != stage or bundle.num_classes != classes:
        raise InferenceError(
            f"model {bundle.name!r} is a {bundle.stage} model with {bundle.num_classes} classes; "
            f"this slot needs a {stage} model with {classes}"
        )


class Segmenter:
    """Loaded networks for the cascade (``liver`` [+ ``lesion``]) or the one-stage mode.

    The networks are built fresh from their bundles (verified); construction fails as a
    whole, so a caller holding a previous :class:`Segmenter` keeps it on error.
    """

    def __init__(
        self,
        *,
        liver: Bundle | None = None,
        lesion: Bundle | None = None,
        onestage: Bundle | None = None,
        options: CascadeOptions | None = None,
        choice: DeviceChoice | None = None,
    ) -> None:
        self.options = options or CascadeOptions()
        if (onestage is None) == (liver is None):
            raise InferenceError("choose either a liver model (cascade) or a one-stage model")
        if onestage is not None and lesion is not None:
            raise InferenceError("a one-stage model takes no separate lesion model")
        if onestage is not None:
            _check_stage(onestage, "onestage", 3)
        if liver is not None:
            _check_stage(liver, "liver", 2)
        if lesion is not None:
            _check_stage(lesion, "lesion", 2)
        self.choice = choice or choose_device(self.options.device, self.options.precision)
        self.bundles = {
            k: b for k, b in (("liver", liver), ("lesion", lesion), ("onestage", onestage)) if b
        }
        self.predictors = {k: self._predictor(b) for k, b in self.bundles.items()}

    def _predictor(self, bundle: Bundle) -> Predictor:
        return Predictor(
            build_model(bundle),
            bundle.preprocessing,
            bundle.num_classes,
            self.choice,
            self.options.predict,
        )

    @property
    def model_ids(self) -> dict[str, str]:
        return {k: b.model_id for k, b in self.bundles.items()}

    def _device(self) -> torch.device:
        return next(iter(self.predictors.values())).choice.device

    def close(self) -> None:
        """Release the networks (and cached GPU memory)."""
        self.predictors.clear()
        if self.choice.device.type == "cuda":
            torch.cuda.empty_cache()

    def run(
        self,
        volume: Volume,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> SegmentationResult:
        """Segment ``volume``; returns labels on its grid or raises (labels untouched).

        Raises
        ------
        Cancelled
            When ``cancel()`` became true (checked between batches).
        InferenceError
            For refused input or an unrecoverable failure.
        """
        if not self.predictors:
            raise InferenceError("this segmenter was closed")
        hu, notices = check_input(volume, self.options.non_finite)
        phases = _Phases(progress, cancel)
        if "onestage" in self.predictors:
            data = self._onestage(hu, volume, phases)
        else:
            data = self._cascade(hu, volume, phases, notices)
        check_cancel(cancel)
        for pred in self.predictors.values():
            notices.extend(n for n in pred.notices if n not in notices)
        if progress is not None:
            progress(1.0, "done")
        labels = LabelMap(data, volume.geometry, name="prediction", source=volume.source)
        device = next(iter(self.predictors.values())).device_description
        return SegmentationResult(labels, phases.total(), self.model_ids, device, notices)

    def _onestage(self, hu: NDArray[Any], volume: Volume, ph: _Phases) -> NDArray[np.uint8]:
        sp = volume.spacing
        probs = self.predictors["onestage"].predict_volume(
            hu, (sp[1], sp[2]), progress=ph.sub(0.0, 0.9, "one-stage"), cancel=ph.cancel
        )
        ph.done("onestage_inference")
        labels = probabilities_to_labels(
            probs, hu.shape[1:], self._device(), ph.sub(0.9, 1.0, "merge")
        )
        ph.done("postprocess")
        return labels

    def _liver(self, hu: NDArray[Any], volume: Volume, ph: _Phases) -> NDArray[np.uint8]:
        """Stage 1: 0/1 liver (uint8, so it doubles as the output map) on the image grid."""
        sp = volume.spacing
        probs = self.predictors["liver"].predict_volume(
            hu, (sp[1], sp[2]), progress=ph.sub(0.0, 0.45, "liver"), cancel=ph.cancel
        )
        ph.done("liver_inference")
        fg = probs[:, 0] > 0.5
        keep = largest_component(fg, self.options.use_scipy, tick=lambda: check_cancel(ph.cancel))
        probs[:, 0][fg & ~keep] = 0  # drop the other components before resampling
        del fg, keep
        labels = probabilities_to_labels(
            probs, hu.shape[1:], self._device(), ph.sub(0.45, 0.55, "liver")
        )
        ph.done("liver_postprocess")
        return labels

    def _cascade(
        self, hu: NDArray[Any], volume: Volume, ph: _Phases, notices: list[str]
    ) -> NDArray[np.uint8]:
        out = self._liver(hu, volume, ph)  # 0/1 == background/LIVER
        liver = out.view(np.bool_)
        box_progress = ph.sub(0.55, 0.57, "liver box")
        depth = max(1, liver.shape[0])
        seen = [0]

        def tick() -> None:  # bounding_box scans 32 planes between ticks
            seen[0] = min(depth, seen[0] + 32)
            box_progress(seen[0] / depth, "finding the liver box")

        box = _margin_box(liver, volume.spacing, self.options.margin_mm, tick)
        if box is None:
            notices.append("no liver found")
            return out
        if "lesion" not in self.predictors:
            return out
        sp = volume.spacing
        keep = liver[box].copy()  # the lesion merge below writes into ``out``
        probs = self.predictors["lesion"].predict_volume(
            hu[box],
            (sp[1], sp[2]),
            keep=keep,
            progress=ph.sub(0.57, 0.95, "lesion"),
            cancel=ph.cancel,
        )
        ph.done("lesion_inference")
        _merge_lesions(probs, out[box], keep, self._device(), ph.sub(0.95, 1.0, "merge"))
        ph.done("merge")
        return out
