"""Run one network over a volume: 2D slice batches or a 3D sliding window.

Output is always the probabilities of classes ``1..K-1`` on the *model grid*
(``[z, K-1, rows, cols]`` float16, the in-plane grid of the bundle's preprocessing), so the
caller chooses how to gate and resample them back to the image grid.

* inference mode; on GPUs bf16/fp16 autocast and channels-last memory;
* batches sized so one batch takes about ``target_batch_s`` (measured as it runs) and,
  on CUDA, fits in half the free memory; progress and cancel between batches;
* on out-of-memory (RELIABILITY row 28): halve the batch, then move to the CPU, each
  with a notice; the partial result is never returned.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from livgui.core.progress import ProgressFn, check_cancel
from livgui.inference.device import DeviceChoice, cpu_choice, free_memory_bytes
from livgui.models.preprocess import Preprocessing, resize_planes

__all__ = ["InferenceError", "PredictOptions", "Predictor", "is_out_of_memory"]

log = logging.getLogger(__name__)
BLENDS = ("gaussian", "linear")


class InferenceError(RuntimeError):
    """Inference could not complete (the message says why)."""


@dataclass(frozen=True)
class PredictOptions:
    """Batching and sliding-window settings.

    Attributes
    ----------
    max_batch
        Upper bound on slices (2D) or patches (3D) per forward pass.
    target_batch_s
        Batches are sized so that one takes about this long (keeps progress and cancel
        within a second).
    overlap
        3D sliding-window overlap as a fraction of the patch (0 <= overlap < 1).
    blend
        ``"gaussian"`` (sigma = patch / 8, as in nnU-Net) or ``"linear"`` (tent) weights.
    """

    max_batch: int = 32
    target_batch_s: float = 0.25
    overlap: float = 0.5
    blend: str = "gaussian"

    def __post_init__(self) -> None:
        if self.blend not in BLENDS or not 0 <= self.overlap < 1 or self.max_batch < 1:
            raise ValueError(f"bad predict options: {self}")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class _Batcher:
    """Adaptive batch limit: by measured time per item and (CUDA) free memory."""

    limit: int
    options: PredictOptions
    bytes_per_item: float = 0.0

    def update(self, items: int, seconds: float, free_bytes: int | None) -> None:
        per_item = max(seconds / max(items, 1), 1e-6)
        by_time = int(self.options.target_batch_s / per_item)
        cap = self.options.max_batch
        if free_bytes is not None and self.bytes_per_item > 0:
            cap = min(cap, int(0.5 * free_bytes / self.bytes_per_item))
        # grow at most 1.5x per batch (a busy machine makes single timings noisy)
        self.limit = max(1, min(cap, by_time, max(self.limit + 1, int(1.5 * self.limit))))


@dataclass
class Predictor:
    """A network ready to run (``model`` already holds its verified weights).

    Attributes
    ----------
    notices
        Human-readable notes gathered while running (batch reduced, moved to CPU, ...).
    """

    model: nn.Module
    preprocessing: Preprocessing
    num_classes: int
    choice: DeviceChoice
    options: PredictOptions = field(default_factory=PredictOptions)
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model.train(False)  # evaluation mode (nn.Module.eval is the same call)
        self._place()
        self._batcher = _Batcher(1, self.options)

    def _place(self) -> None:
        self.model.to(self.choice.device)
        if self.choice.channels_last and self.preprocessing.patch_size is None:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @property
    def device_description(self) -> str:
        return self.choice.description

    # -- forward with out-of-memory handling ------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dev = self.choice.device
        x = x.to(dev, non_blocking=True)
        if self.choice.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = self.choice.amp_dtype
        with torch.inference_mode(), torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            logits = self.model(x)
        if logits.shape[1] != self.num_classes:
            raise InferenceError(
                f"network gave {logits.shape[1]} classes, the bundle declares {self.num_classes}"
            )
        return torch.softmax(logits.float(), dim=1)

    def _handle_oom(self, items: int, exc: BaseException) -> None:
        if self.choice.device.type == "cuda":
            torch.cuda.empty_cache()
        if items > 1:
            self._batcher.limit = max(1, items // 2)
            note = f"out of memory on {self.choice.description}: batch reduced to {self._batcher.limit}"
        elif self.choice.is_accelerator:
            self.choice = cpu_choice()
            self._place()
            note = "GPU out of memory even for one slice: continuing on the CPU (slower)"
        else:
            raise InferenceError("out of memory even for a single slice on the CPU") from exc
        log.warning(note)
        if note not in self.notices:
            self.notices.append(note)

    def run_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities for a CPU batch ``[n, c, ...]``, split as memory requires."""
        outs = []
        i = 0
        while i < x.shape[0]:
            n = min(self._batcher.limit, x.shape[0] - i)
            try:
                outs.append(self._forward(x[i : i + n]).cpu())
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._handle_oom(n, exc)
                continue
            i += n
        return torch.cat(outs)

    def _timed_batch(self, x: torch.Tensor) -> torch.Tensor:
        dev = self.choice.device
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            before = torch.cuda.memory_allocated(dev)
        out = self.run_batch(x)
        if dev.type == "cuda" and self.choice.device.type == "cuda":
            used = torch.cuda.max_memory_allocated(dev) - before
            self._batcher.bytes_per_item = max(self._batcher.bytes_per_item, used / x.shape[0])
        return out

    def _learn(self, items: int, seconds: float) -> None:
        """Resize the next batch from the whole iteration's time (input preparation included)."""
        self._batcher.update(items, seconds, free_memory_bytes(self.choice.device))

    # -- 2D -------------------------------------------------------------------------------
    def _slice_input(
        self, hu: NDArray[Any], zs: range, keep: NDArray[np.bool_] | None, grid: tuple[int, int]
    ) -> torch.Tensor:
        prep = self.preprocessing
        depth = hu.shape[0]
        index = [prep.context_indices(z, depth) for z in zs]
        flat = sorted({i for row in index for i in row})
        planes = torch.from_numpy(prep.normalise(hu[flat]))
        if keep is not None:
            fill = torch.tensor(prep.background_value)
            planes = torch.where(torch.from_numpy(np.ascontiguousarray(keep[flat])), planes, fill)
        pos = {z: k for k, z in enumerate(flat)}
        x = torch.stack([planes[[pos[i] for i in row]] for row in index])
        return resize_planes(x, grid)

    def predict_slices(
        self,
        hu: NDArray[Any],
        spacing_yx: tuple[float, float],
        keep: NDArray[np.bool_] | None = None,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> NDArray[np.float16]:
        """Class 1..K-1 probabilities ``[z, K-1, rows, cols]`` on the model grid (2D nets).

        Parameters
        ----------
        hu
            ``[z, y, x]`` HU (any numeric dtype, finite).
        spacing_yx
            In-plane pixel size (row, column) in mm.
        keep
            Optional ``[z, y, x]`` mask; voxels outside become the window's low end
            (the stage-2 "liver-masked image").
        """
        grid = self.preprocessing.model_grid((hu.shape[1], hu.shape[2]), spacing_yx)
        depth = hu.shape[0]
        out = np.empty((depth, self.num_classes - 1, *grid), dtype=np.float16)
        z = 0
        while z < depth:
            check_cancel(cancel)
            t0 = time.perf_counter()
            zs = range(z, min(depth, z + self._batcher.limit))
            probs = self._timed_batch(self._slice_input(hu, zs, keep, grid))
            out[zs.start : zs.stop] = probs[:, 1:].numpy().astype(np.float16)
            self._learn(len(zs), time.perf_counter() - t0)
            z = zs.stop
            if progress is not None:
                progress(z / depth, f"slice {z} of {depth}")
        return out

    # -- 3D -------------------------------------------------------------------------------
    def predict_volume(
        self,
        hu: NDArray[Any],
        spacing_yx: tuple[float, float],
        keep: NDArray[np.bool_] | None = None,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> NDArray[np.float16]:
        """Like :meth:`predict_slices`, dispatching to the 3D sliding window when the
        preprocessing has a ``patch_size``."""
        if self.preprocessing.patch_size is None:
            return self.predict_slices(hu, spacing_yx, keep, progress, cancel)
        return self._sliding_window(hu, spacing_yx, keep, progress, cancel)

    def _planes_at_grid(
        self, hu: NDArray[Any], keep: NDArray[np.bool_] | None, grid: tuple[int, int]
    ) -> torch.Tensor:
        prep = self.preprocessing
        out = torch.empty((hu.shape[0], *grid))
        for z in range(0, hu.shape[0], 16):
            zs = range(z, min(hu.shape[0], z + 16))
            saved = prep.context_slices
            x = self._slice_input(hu, zs, keep, grid)[:, saved : saved + 1]
            out[zs.start : zs.stop] = x[:, 0]
        return out

    def _sliding_window(
        self,
        hu: NDArray[Any],
        spacing_yx: tuple[float, float],
        keep: NDArray[np.bool_] | None,
        progress: ProgressFn | None,
        cancel: Callable[[], bool] | None,
    ) -> NDArray[np.float16]:
        assert self.preprocessing.patch_size is not None
        patch = self.preprocessing.patch_size
        grid = self.preprocessing.model_grid((hu.shape[1], hu.shape[2]), spacing_yx)
        vol = self._planes_at_grid(hu, keep, grid)
        shape = tuple(vol.shape)
        pads = [max(0, p - n) for p, n in zip(patch, shape, strict=True)]
        vol = torch.nn.functional.pad(
            vol, (0, pads[2], 0, pads[1], 0, pads[0]), value=self.preprocessing.background_value
        )
        starts = [
            _starts(n, p, self.options.overlap) for n, p in zip(vol.shape, patch, strict=True)
        ]
        corners = [(a, b, c) for a in starts[0] for b in starts[1] for c in starts[2]]
        weight = _blend_weights(patch, self.options.blend)
        acc = torch.zeros((self.num_classes, *vol.shape))
        norm = torch.zeros(tuple(vol.shape))
        i = 0
        while i < len(corners):
            check_cancel(cancel)
            t0 = time.perf_counter()
            group = corners[i : i + self._batcher.limit]
            x = torch.stack([_cut(vol, c, patch)[None] for c in group])
            probs = self._timed_batch(x)
            for c, p in zip(group, probs, strict=True):
                region = tuple(slice(s, s + n) for s, n in zip(c, patch, strict=True))
                acc[(slice(None), *region)] += p * weight
                norm[region] += weight
            self._learn(len(group), time.perf_counter() - t0)
            i += len(group)
            if progress is not None:
                progress(i / len(corners), f"patch {i} of {len(corners)}")
        crop = tuple(slice(0, n) for n in shape)
        result = (acc[(slice(1, None), *crop)] / norm[crop].clamp_min(1e-8)).permute(1, 0, 2, 3)
        return result.numpy().astype(np.float16)


def _starts(n: int, p: int, overlap: float) -> list[int]:
    """Evenly spaced patch starts covering ``n`` voxels with patches of ``p``."""
    if n <= p:
        return [0]
    step = max(1, int(p * (1 - overlap)))
    count = math.ceil((n - p) / step) + 1
    return sorted({round(k * (n - p) / (count - 1)) for k in range(count)})


def _cut(
    vol: torch.Tensor, corner: tuple[int, int, int], patch: tuple[int, int, int]
) -> torch.Tensor:
    z, y, x = corner
    return vol[z : z + patch[0], y : y + patch[1], x : x + patch[2]]


def _blend_weights(patch: tuple[int, int, int], blend: str) -> torch.Tensor:
    """Per-voxel weights of one patch: highest in the centre, never zero."""
    axes = []
    for n in patch:
        centre = (n - 1) / 2
        pos = torch.arange(n, dtype=torch.float32) - centre
        if blend == "gaussian":
            sigma = max(n / 8, 1e-3)
            w = torch.exp(-0.5 * (pos / sigma) ** 2)
        else:
            w = 1 - pos.abs() / (centre + 1)
        axes.append(w)
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (weight / weight.max()).clamp_min(1e-3)
