"""The segmentation panel as a radiologist uses it: pick models, Run, watch, Cancel, Undo.

Oracle bundles (hand-set HU thresholds) stand in for trained networks, so every expected
mask is known in closed form and computed here with numpy on the original grid.
"""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
nib = pytest.importorskip("nibabel")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from livgui.core.volume import LabelMap  # noqa: E402
from livgui.inference.components import largest_component  # noqa: E402
from livgui.models.oracle import oracle_bundle  # noqa: E402
from livgui.models.preprocess import Preprocessing  # noqa: E402
from livgui.models.store import ModelStore  # noqa: E402
from tests.conftest import make_phantom  # noqa: E402

BODY_HU, BRIGHT_HU = -200.0, 70.0  # stage 1: body; stage 2: the bright liver blob inside it
LIVER_PREP = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=(48, 40))
LESION_PREP = Preprocessing(hu_window=(-500.0, 1500.0), target_size=None)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.count_nonzero(a & b)) / s


def _expected(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    body = largest_component(hu > BODY_HU)
    return body, (hu > BRIGHT_HU) & body


def _store_env(tmp_path, monkeypatch, show_test: bool = True) -> ModelStore:
    monkeypatch.setenv("LIVGUI_MODELS_DIR", str(tmp_path / "models" / "user"))
    monkeypatch.setenv("LIVGUI_BUNDLED_MODELS", str(tmp_path / "models" / "bundled"))
    if show_test:
        monkeypatch.setenv("LIVGUI_SHOW_TEST_MODELS", "1")
    else:
        monkeypatch.delenv("LIVGUI_SHOW_TEST_MODELS", raising=False)
    return ModelStore()


@pytest.fixture
def oracles(tmp_path, monkeypatch):
    store = _store_env(tmp_path, monkeypatch)
    liver = store.install(*oracle_bundle("oracle-body", "liver", (BODY_HU,), LIVER_PREP))
    lesion = store.install(*oracle_bundle("oracle-bright", "lesion", (BRIGHT_HU,), LESION_PREP))
    return liver, lesion


def _listed(panel, qtbot):
    from pytestqt.exceptions import TimeoutError as QtTimeout

    try:
        with qtbot.waitSignal(panel.models_listed, timeout=30000):
            panel.refresh_models()
    except QtTimeout:
        pytest.fail(f"models not listed; the panel says: {panel.hint.text()!r}")
    return panel


@pytest.fixture
def panel(oracles, window, qtbot):
    return _listed(window.segment_panel, qtbot)


def _show(window, qtbot, shape=(40, 96, 96)):
    from livgui.ui.loading import Loaded

    vol, ref = make_phantom(shape, (2.5, 0.8, 0.8))
    with qtbot.waitSignal(window.metrics_panel.analysis_done, timeout=30000):
        window.show_case(Loaded("phantom", vol, [("reference", "reference", ref)]))
    return vol, ref


def _wait_idle(panel, qtbot):
    if panel.busy:  # the worker's end is still queued: the panel says when it is idle
        with qtbot.waitSignal(panel.idle, timeout=10000):
            pass


def _run(panel, qtbot, timeout=60000):
    with qtbot.waitSignal(panel.run_finished, timeout=timeout) as blocker:
        worker = panel.run_current()
        assert worker is not None
    _wait_idle(panel, qtbot)
    return blocker.args[0]


def test_cascade_run_adds_an_aligned_prediction_layer_and_updates_metrics(panel, window, qtbot):
    vol, _ref = _show(window, qtbot)
    assert panel.liver_combo.currentText().startswith("oracle-body")
    assert panel.lesion_combo.currentText().startswith("oracle-bright")
    seen: list[float] = []
    panel.progressed.connect(lambda f, _m: seen.append(f))
    result = _run(panel, qtbot)
    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    layer = window.session.layer("prediction")
    assert layer is not None and layer.kind == "prediction"
    assert layer.labels.geometry is vol.geometry
    body, bright = _expected(vol.hu())
    assert _dice(layer.labels.data > 0, body) >= 0.98
    assert _dice(layer.labels.data == 2, bright) >= 0.98
    assert set(result.model_ids) == {"liver", "lesion"}
    with qtbot.waitSignal(window.metrics_panel.analysis_done, timeout=30000):
        pass  # the metrics dock recomputes after the layer change
    metrics = window.session.results["analysis"]["metrics"]["prediction"]
    assert 0.0 < metrics["liver"]["dice"] <= 1.0
    assert not panel.busy and panel.run_button.isEnabled()
    assert "research use only" in panel.summary.text()


def test_cancel_mid_run_leaves_every_layer_untouched_and_the_panel_idle(
    panel, window, qtbot, monkeypatch
):
    import livgui.ui.segment_panel as module

    _show(window, qtbot)
    _run(panel, qtbot)  # an earlier prediction exists
    before = {la.name: (la.labels, la.labels.data.copy()) for la in window.session.layers}
    real, reached, release = module.segment_case, threading.Event(), threading.Event()

    def gated(request, volume, *, progress, cancel):
        def report(fraction, message):
            progress(fraction, message)
            if fraction > 0.05:
                reached.set()
                release.wait(10)  # hold the engine mid-run until the user pressed Cancel

        return real(request, volume, progress=report, cancel=cancel)

    monkeypatch.setattr(module, "segment_case", gated)
    assert panel.run_current() is not None
    qtbot.waitUntil(reached.is_set, timeout=30000)  # the engine is inside the liver stage
    assert panel.busy and panel.cancel_button.isEnabled() and not panel.run_button.isEnabled()
    with qtbot.waitSignal(panel.idle, timeout=10000):
        panel.cancel()
        release.set()
    assert not panel.busy and panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert "Cancelled" in panel.progress_label.text()
    after = {la.name: la.labels for la in window.session.layers}
    assert set(after) == set(before)
    for name, (labels, data) in before.items():
        assert after[name] is labels and np.array_equal(labels.data, data)


def test_a_run_over_manual_edits_never_changes_the_correction_and_is_undoable(panel, window, qtbot):
    _vol, ref = _show(window, qtbot)
    session = window.session
    correction = LabelMap(ref.data.copy(), ref.geometry, name="correction")
    correction.data[5, 10, 10] = 2  # a painted voxel
    session.add_layer("correction", "correction", correction)
    old_prediction = LabelMap(np.zeros_like(ref.data), ref.geometry, name="prediction")
    session.add_layer("prediction", "prediction", old_prediction)
    painted = correction.data.copy()
    _run(panel, qtbot)
    assert session.layer("correction").labels is correction
    assert np.array_equal(correction.data, painted) and correction.data[5, 10, 10] == 2
    new = session.layer("prediction").labels
    assert new is not old_prediction and new.data.any()
    assert panel.undo_button.isEnabled()
    assert panel.undo_last_run()
    assert session.layer("prediction").labels is old_prediction
    assert session.layer("correction").labels is correction
    assert not panel.undo_button.isEnabled()
    # a layer of another kind that happens to be called "prediction" is never replaced
    session.remove_layer("prediction")
    session.add_layer("prediction", "correction", old_prediction)
    _run(panel, qtbot)
    assert session.layer("prediction").labels is old_prediction
    assert session.layer("prediction").kind == "correction"
    assert session.layer("model prediction").kind == "prediction"
    assert panel.undo_last_run() and session.layer("model prediction") is None


def test_the_window_stays_responsive_during_cpu_inference(panel, window, qtbot, monkeypatch):
    import torch

    import livgui.ui.segment_panel as module

    real, threads = module.segment_case, []

    def counted(request, volume, *, progress, cancel):
        result = real(request, volume, progress=progress, cancel=cancel)
        threads.append(torch.get_num_threads())  # in the worker thread that ran the networks
        return result

    monkeypatch.setattr(module, "segment_case", counted)
    _show(window, qtbot, shape=(48, 160, 160))
    stamps: list[float] = []
    heartbeat = QTimer(window)
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: stamps.append(time.perf_counter()))
    heartbeat.start()
    try:
        _run(panel, qtbot)
    finally:
        heartbeat.stop()
    gaps = np.diff(stamps)
    assert len(stamps) > 10
    assert float(gaps.max()) < 0.25, f"event loop stalled {gaps.max() * 1000:.0f} ms"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads == [max(1, cores - 1)]


def test_status_bar_shows_the_device_and_cpu_threads_leave_a_core_free(panel, window):
    label = window.statusBar().findChild(QLabel, "device")
    assert label is panel.device_label
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    if torch.cuda.is_available():
        assert label.text().startswith("Device: GPU: ")
    else:
        match = re.fullmatch(r"Device: CPU, (\d+) threads?", label.text())
        assert match and int(match.group(1)) == max(1, cores - 1)


def _lits_case(folder, n: int, seed: int) -> None:
    vol, lab = make_phantom((10, 48, 48), (2.5, 0.8, 0.8), seed=seed)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    nib.save(
        nib.Nifti1Image(vol.data.transpose(2, 1, 0).copy(), affine), folder / f"volume-{n}.nii.gz"
    )
    nib.save(
        nib.Nifti1Image(lab.data.transpose(2, 1, 0).copy(), affine),
        folder / f"segmentation-{n}.nii.gz",
    )


def test_run_on_all_cases_writes_originals_statuses_and_audit(panel, window, qtbot, tmp_path):
    from livgui.library import Library

    data = tmp_path / "lits"
    data.mkdir()
    for n in (1, 2, 3):
        _lits_case(data, n, seed=n)
    corrupt = data / "volume-3.nii.gz"
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 2])
    with Library.open(tmp_path / "library") as lib:
        lib.add_path(data)
        ids = {r.case_id: r for r in lib.list_cases()}
        assert len(ids) == 3
        bad = next(c for c, r in ids.items() if r.status == "unreadable")
        new, reviewed = sorted(c for c in ids if c != bad)
        lib.set_status(reviewed, "corrected")
    window.case_list.open_library(tmp_path / "library")
    case_fractions: list[float] = []
    panel.case_progressed.connect(lambda i, n, c, f, m: case_fractions.append(f))
    with qtbot.waitSignal(panel.batch_finished, timeout=120000) as blocker:
        panel.run_all()
    report = blocker.args[0]
    assert not report.cancelled and case_fractions
    states = {c.case_id: c.state for c in report.cases}
    assert states == {new: "predicted", reviewed: "stored", bad: "skipped"}
    with Library.open(tmp_path / "library") as lib:
        assert lib.get(new).status == "predicted"
        assert lib.get(reviewed).status == "corrected"  # reviewed work is never demoted
        assert lib.get(bad).status == "unreadable"
        for case_id in (new, reviewed):
            (mask,) = lib.masks(case_id, "original")
            assert mask.model_id.startswith("oracle-body@") and "oracle-bright@" in mask.model_id
            path = lib.mask_path(mask)
            assert path.is_file() and path.parent == lib.case_dir(case_id)
            stored = np.asarray(nib.load(path).dataobj)
            assert stored.dtype == np.uint8 and stored.shape == (48, 48, 10)
            infer = [a for a in lib.audit_log(case_id) if a.action == "infer"]
            assert len(infer) == 1
            details = infer[0].details
            assert set(details["models"]) == {"liver", "lesion"}
            assert details["device"].startswith("cpu")
            assert details["timings_s"]["total"] > 0
        assert not lib.masks(bad, "original")
    assert "already corrected" in panel.notices.text()
    assert window.case_list.tree.topLevelItem(0) is not None


def test_without_bundles_the_panel_says_how_to_install_one(window, qtbot, tmp_path, monkeypatch):
    store = _store_env(tmp_path, monkeypatch, show_test=False)
    store.install(*oracle_bundle("oracle-body", "liver", (BODY_HU,), LIVER_PREP))
    panel = _listed(window.segment_panel, qtbot)
    assert "livgui models install" in panel.hint.text()  # oracles are test tools: hidden
    assert panel.liver_combo.count() == 0
    assert not panel.run_button.isEnabled()

    from livgui.models import registry
    from livgui.models.bundle import Bundle, save_bundle

    hp = {"in_channels": 1, "num_classes": 2, "base_c": 4, "depth": 2}
    model = registry.build("unet2d", **hp)
    bundle = Bundle("tiny-liver", "unet2d", hp, "liver", {0: "background", 1: "liver"}, LIVER_PREP)
    folder = save_bundle(bundle, model, tmp_path / "download" / "tiny-liver").path
    with qtbot.waitSignal(panel.models_listed, timeout=30000):
        panel.install_folder(str(folder))
    assert panel.liver_combo.currentText().startswith("tiny-liver (unet2d)")
    assert "livgui models install" not in panel.hint.text()
    _show(window, qtbot)
    assert panel.run_button.isEnabled()


def test_nan_voxels_are_refused_with_a_message_or_replaced_with_a_notice(panel, window, qtbot):
    from livgui.core.volume import Volume
    from livgui.ui.loading import Loaded

    vol, _ref = make_phantom((12, 48, 48), (2.5, 0.8, 0.8))
    data = vol.hu()
    data[3, 5, 5] = np.nan
    window.show_case(Loaded("nan-case", Volume(data, vol.geometry, name="nan-case")))
    with qtbot.waitSignal(panel.run_failed, timeout=30000) as blocker:
        panel.run_current()
    assert "NaN/Inf" in blocker.args[0] and "NaN/Inf" in panel.progress_label.text()
    assert window.session.layer("prediction") is None
    _wait_idle(panel, qtbot)
    panel.replace_check.setChecked(True)
    _run(panel, qtbot)
    assert "1 NaN/Inf voxels replaced" in panel.notices.text()
    assert window.session.layer("prediction") is not None


def test_eta_is_estimated_from_the_elapsed_time():
    from livgui.ui.segment_panel import _eta_text

    assert _eta_text(0.5, 10.0) == "about 10 s left"
    assert _eta_text(0.25, 60.0) == "about 3.0 min left"
    assert _eta_text(0.01, 10.0) == "estimating time left…"


def test_cancelling_a_library_run_keeps_finished_cases_and_touches_no_other(
    panel, window, qtbot, tmp_path, monkeypatch
):
    import livgui.ui.segment_worker as worker_module
    from livgui.library import Library

    data = tmp_path / "lits"
    data.mkdir()
    for n in (1, 2):
        _lits_case(data, n, seed=n)
    with Library.open(tmp_path / "library") as lib:
        lib.add_path(data)
        first, second = [r.case_id for r in lib.list_cases()]
    window.case_list.open_library(tmp_path / "library")
    real, reached, release = worker_module._one_library_case, threading.Event(), threading.Event()

    def gated(lib, case_id, segmenter, progress, cancel):
        if case_id == second:
            reached.set()
            release.wait(10)  # the user presses Cancel while the second case starts
        return real(lib, case_id, segmenter, progress, cancel)

    monkeypatch.setattr(worker_module, "_one_library_case", gated)
    assert panel.run_all() is not None
    qtbot.waitUntil(reached.is_set, timeout=60000)
    with qtbot.waitSignal(panel.batch_finished, timeout=30000) as blocker:
        panel.cancel()
        release.set()
    report = blocker.args[0]
    assert report.cancelled and [c.case_id for c in report.cases] == [first]
    _wait_idle(panel, qtbot)
    with Library.open(tmp_path / "library") as lib:
        assert lib.get(first).status == "predicted" and len(lib.masks(first, "original")) == 1
        assert lib.get(second).status == "new" and not lib.masks(second, "original")
        assert not [a for a in lib.audit_log(second) if a.action.startswith("infer")]
    assert "cancelled" in panel.summary.text()
