"""Device choice (CUDA, Apple MPS, CPU) and the settings that go with it.

On a GPU inference runs under ``torch.inference_mode`` with bf16 autocast (fp16 where the
card has no bf16) and channels-last memory; on the CPU in fp32 with at most
``cores - 1`` threads when the GUI runs, so the window stays responsive.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

__all__ = [
    "DeviceChoice",
    "DeviceError",
    "choose_device",
    "cpu_threads_for_gui",
    "free_memory_bytes",
    "gui_thread_count",
]

log = logging.getLogger(__name__)
DEVICE_REQUESTS = ("auto", "cpu", "cuda", "mps")


class DeviceError(RuntimeError):
    """The requested device is not available."""


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how to run a network.

    Attributes
    ----------
    device
        The torch device.
    amp_dtype
        Autocast dtype (``torch.bfloat16`` / ``torch.float16``) or ``None`` for fp32.
    channels_last
        Use channels-last memory format (helps convolutions on GPUs).
    description
        Human-readable name for reports and the status bar (e.g. ``"cuda:0 (NVIDIA H100)"``).
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    description: str

    @property
    def is_accelerator(self) -> bool:
        return self.device.type != "cpu"

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "fp32")  # type: ignore[arg-type]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_choice() -> DeviceChoice:
    return DeviceChoice(
        torch.device("cpu"), None, False, f"cpu ({torch.get_num_threads()} threads)"
    )


def choose_device(request: str = "auto", precision: str = "auto") -> DeviceChoice:
    """Pick the device: ``auto`` prefers CUDA, then MPS, then the CPU.

    Parameters
    ----------
    request
        ``"auto"``, ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"mps"``.
    precision
        ``"auto"`` (bf16/fp16 on GPUs, fp32 on the CPU), ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    """
    kind = request.split(":", maxsplit=1)[0]
    if kind not in DEVICE_REQUESTS:
        raise DeviceError(f"unknown device {request!r}; choose one of {', '.join(DEVICE_REQUESTS)}")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
        request = kind
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA GPU is available")
    if kind == "mps" and not _mps_available():
        raise DeviceError("Apple MPS was requested but is not available")
    if kind == "cpu":
        choice = cpu_choice()
        amp = {"bf16": torch.bfloat16}.get(precision)
        return DeviceChoice(choice.device, amp, False, choice.description)
    device = torch.device(request)
    return DeviceChoice(device, _amp_dtype(device, precision), True, _describe(device))


def _amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def free_memory_bytes(device: torch.device) -> int | None:
    """Free accelerator memory in bytes (``None`` on the CPU or when unknown)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def gui_thread_count() -> int:
    """CPU threads for in-GUI inference: ``cores - 1`` (at least 1), one core left to the GUI."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(1, cores - 1)


def cpu_threads_for_gui() -> int:
    """Set and return the CPU thread count for in-GUI inference: ``cores - 1`` (at least 1).

    Calls ``torch.set_num_threads`` only when the count differs (it reconfigures the
    process-wide thread pools; repeating it from every worker thread is pointless).
    """
    threads = gui_thread_count()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        log.info("CPU inference uses %d threads (one core left to the window)", threads)
    return threads
