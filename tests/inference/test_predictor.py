"""Predictor behaviour a user relies on: OOM fallback, cancel, progress, 3D windows."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from livgui.core.progress import Cancelled, CancelToken
from livgui.inference.device import DeviceChoice, choose_device
from livgui.inference.predictor import InferenceError, PredictOptions, Predictor
from livgui.models.oracle import oracle_bundle
from livgui.models.preprocess import Preprocessing
from tests.inference.oracles import synthetic_ct

PREP = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=(32, 24))


def _oracle(prep: Preprocessing = PREP, thresholds=(-200.0,)) -> nn.Module:
    return oracle_bundle("o", "liver", thresholds, prep)[1]


class _Slow(nn.Module):
    """Wraps a network; sleeps per forward and can fail with a fake out-of-memory."""

    def __init__(self, inner: nn.Module, delay: float = 0.0, oom_above: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.delay = delay
        self.oom_above = oom_above
        self.batches: list[int] = []
        self.fail_all = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        if self.fail_all or (self.oom_above is not None and x.shape[0] > self.oom_above):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
        self.batches.append(int(x.shape[0]))
        return self.inner(x)


def _hu() -> np.ndarray:
    return synthetic_ct((24, 64, 48), (2.0, 1.0, 1.0)).hu()


def _predict(model: nn.Module, hu=None, prep=PREP, options=None, choice=None, **kw):
    pred = Predictor(model, prep, 2, choice or choose_device("cpu"), options or PredictOptions())
    return pred, pred.predict_volume(_hu() if hu is None else hu, (1.0, 1.0), **kw)


def test_oracle_probabilities_on_the_model_grid():
    hu = _hu()
    _, probs = _predict(_oracle(), hu)
    assert probs.shape == (24, 1, 32, 24) and probs.dtype == np.float16
    assert 0.0 <= float(probs.min()) and float(probs.max()) <= 1.0


def test_out_of_memory_halves_the_batch_with_a_notice_and_same_result():
    hu = _hu()
    _, expected = _predict(_oracle(), hu, options=PredictOptions(target_batch_s=10.0))
    model = _Slow(_oracle(), oom_above=2)
    pred, got = _predict(model, hu, options=PredictOptions(target_batch_s=10.0))
    assert np.array_equal(got, expected)
    assert max(model.batches) <= 2
    assert any("batch reduced" in n for n in pred.notices)


class _FakeGpu(DeviceChoice):
    @property
    def is_accelerator(self) -> bool:
        return self.description == "fake-gpu"


def test_out_of_memory_on_one_slice_moves_to_the_cpu_with_a_notice():
    model = _Slow(_oracle())
    model.fail_all = True
    fake = _FakeGpu(torch.device("cpu"), None, False, "fake-gpu")
    pred = Predictor(model, PREP, 2, fake, PredictOptions())
    original_place = pred._place

    def place_and_heal() -> None:  # "on the CPU" the fake allocation failure disappears
        model.fail_all = pred.choice.description == "fake-gpu"
        original_place()

    pred._place = place_and_heal  # type: ignore[method-assign]
    probs = pred.predict_volume(_hu(), (1.0, 1.0))
    assert probs.shape[0] == 24
    assert pred.choice.device.type == "cpu" and pred.choice.description.startswith("cpu")
    assert any("continuing on the CPU" in n for n in pred.notices)


def test_out_of_memory_on_the_cpu_with_one_slice_is_a_clear_error():
    model = _Slow(_oracle())
    model.fail_all = True
    with pytest.raises(InferenceError, match="out of memory even for a single slice"):
        _predict(model)


def test_cancel_stops_between_batches_quickly():
    token = CancelToken()
    model = _Slow(_oracle(), delay=0.05)
    calls: list[float] = []

    def progress(fraction: float, message: str) -> None:
        calls.append(fraction)
        if len(calls) == 2:
            threading.Timer(0.0, token.cancel).start()

    hu = np.repeat(_hu(), 10, axis=0)  # 240 slices: seconds of work if not cancelled
    start = time.perf_counter()
    with pytest.raises(Cancelled):
        _predict(model, hu, progress=progress, cancel=token)
    assert time.perf_counter() - start < 5.0
    assert sum(model.batches) < hu.shape[0]


def test_progress_is_monotonic_frequent_and_reaches_one():
    model = _Slow(_oracle(), delay=0.02)
    stamps: list[tuple[float, float]] = []
    _predict(model, progress=lambda f, m: stamps.append((time.perf_counter(), f)))
    fractions = [f for _, f in stamps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    gaps = np.diff([t for t, _ in stamps])
    assert gaps.max() < 2.0  # generous: the benchmark measures the real cadence


def test_batches_grow_when_slices_are_fast():
    model = _Slow(_oracle())
    _predict(model, options=PredictOptions(max_batch=8))
    assert model.batches[0] == 1 and max(model.batches) == 8


def test_context_slices_feed_neighbours_and_keep_the_result():
    hu = _hu()
    _, plain = _predict(_oracle(), hu)
    prep3 = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=(32, 24), context_slices=1)
    assert prep3.context_indices(0, 24) == [0, 0, 1] and prep3.context_indices(23, 24) == [
        22,
        23,
        23,
    ]
    _, ctx = _predict(_oracle(prep3), hu, prep=prep3)
    assert np.array_equal(plain, ctx)  # the oracle reads only the centre channel


@pytest.mark.parametrize("blend", ["gaussian", "linear"])
def test_sliding_window_3d_reproduces_the_threshold(blend):
    hu = _hu()
    prep = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=None, patch_size=(8, 24, 20))
    _, probs = _predict(_oracle(prep), hu, prep=prep, options=PredictOptions(blend=blend))
    assert probs.shape == (24, 1, 64, 48)
    assert np.array_equal(probs[:, 0] > 0.5, hu > -200)


def test_keep_mask_sets_outside_voxels_to_the_window_low_end():
    hu = _hu()
    keep = np.zeros(hu.shape, bool)
    keep[:, 10:50, 10:40] = True
    prep = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=None)
    _, probs = _predict(_oracle(prep), hu, prep=prep, keep=keep)
    assert np.array_equal(probs[:, 0] > 0.5, (hu > -200) & keep)
