"""Device choice: the CPU thread budget of in-GUI inference leaves one core to the window."""

from __future__ import annotations

import os

import pytest
import torch

from livgui.inference.device import (
    DeviceError,
    choose_device,
    cpu_threads_for_gui,
    gui_thread_count,
)


def test_gui_inference_uses_all_cores_but_one():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    try:
        assert gui_thread_count() == max(1, cores - 1)
        assert cpu_threads_for_gui() == max(1, cores - 1)
        assert torch.get_num_threads() == max(1, cores - 1)
        assert choose_device("cpu").description == f"cpu ({max(1, cores - 1)} threads)"
    finally:
        torch.set_num_threads(before)


def test_unknown_or_missing_devices_are_clear_errors():
    with pytest.raises(DeviceError, match="unknown device"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            choose_device("cuda")
