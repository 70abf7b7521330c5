"""Opening cases: workers report progress, can be cancelled, never block the window."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from livgui.core.progress import check_cancel
from livgui.ui.loading import Loaded
from livgui.ui.workers import Worker
from tests.conftest import make_phantom, shared_path


def _slow_load(progress, cancel, steps=40, seconds=0.02):
    """A load that works in steps (numpy, so the GIL is released), checking cancel."""
    vol, lab = make_phantom((40, 64, 64))
    a = np.random.default_rng(0).random((300, 300))
    for i in range(steps):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            a = a @ a.T / 300.0
        check_cancel(cancel)
        progress((i + 1) / steps, f"slice {i + 1}/{steps}")
    return Loaded("slow", vol, [("reference", "reference", lab)])


def test_worker_reports_progress_and_the_result(qtbot):
    seen = []
    worker = Worker(_slow_load, "loading")
    worker.progressed.connect(lambda f, m: seen.append(f))
    with qtbot.waitSignal(worker.succeeded, timeout=20000) as blocker:
        worker.start()
    worker.wait()
    assert isinstance(blocker.args[0], Loaded)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


def test_worker_failure_carries_the_exception(qtbot):
    def broken(progress, cancel):
        raise ValueError("/x/ct.nii.gz: file is incomplete or corrupt")

    worker = Worker(broken, "loading")
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.start()
    worker.wait()
    assert "incomplete" in str(blocker.args[0])


def test_loading_can_be_cancelled_from_the_status_bar(window, qtbot):
    worker = window.start_load(_slow_load, "Opening slow")
    with qtbot.waitSignal(worker.progressed, timeout=10000):
        pass
    assert window.task_bar.isVisible()
    with qtbot.waitSignal(window.load_cancelled, timeout=10000):
        window.task_bar.cancel_button.click()
    qtbot.waitUntil(lambda: not window.task_bar.isVisible(), timeout=5000)
    assert not window.session.has_case


def test_window_keeps_responding_during_a_load(window, qtbot):
    """Event-loop heartbeat every 10 ms; the longest gap during a load stays small."""
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.monotonic()))
    timer.start()
    with qtbot.waitSignal(window.case_loaded, timeout=30000):
        window.start_load(
            lambda progress, cancel: _slow_load(progress, cancel, 50, 0.02), "Opening"
        )
    timer.stop()
    gaps = np.diff(beats)
    assert len(beats) > 20
    assert gaps.max() < 0.5, f"event loop stalled for {gaps.max():.3f} s"
    assert window.session.case_id == "slow"


def test_a_newer_load_makes_the_older_result_stale(window, qtbot):
    """The first load ignores cancel and finishes last; its result must not be shown."""
    import dataclasses

    def load(case_id, steps, honour_cancel):
        def fn(progress, cancel):
            loaded = _slow_load(progress, cancel if honour_cancel else None, steps, 0.01)
            return dataclasses.replace(loaded, case_id=case_id)

        return fn

    shown = []
    window.case_loaded.connect(lambda *_a: shown.append(window.session.case_id))
    first = window.start_load(load("first", 30, False), "first")
    with qtbot.waitSignal(first.progressed, timeout=10000):
        pass  # the first load is really running when the second one starts
    window.start_load(load("second", 2, True), "second")
    assert first.is_cancelled
    qtbot.waitUntil(lambda: not window.workers, timeout=20000)  # both threads finished
    qtbot.wait(50)  # deliver any queued result of the first worker
    assert shown == ["second"]
    assert window.session.case_id == "second"


def test_opening_a_missing_path_reports_the_path(window, qtbot, tmp_path):
    missing = tmp_path / "nothing.nii.gz"
    with qtbot.waitSignal(window.load_failed, timeout=10000) as blocker:
        window.open_path(missing)
    assert str(missing) in blocker.args[0]


def test_recent_files_remember_opened_paths(window, qtbot, tmp_path):
    with qtbot.waitSignal(window.load_failed, timeout=10000):
        window.open_path(tmp_path / "a.nii.gz")
    assert window.recent_paths()[0] == str(tmp_path / "a.nii.gz")


def test_open_a_nifti_file_through_the_window(window, qtbot, tmp_path):
    nib = pytest.importorskip("nibabel")
    vol, _lab = make_phantom()
    affine = np.diag([0.8, 0.8, 2.5, 1.0])  # RAS: file axes i, j run to the right, anterior
    nib.save(
        nib.Nifti1Image(np.transpose(vol.data, (2, 1, 0))[::-1, ::-1].copy(), affine),
        tmp_path / "ct.nii.gz",
    )
    with qtbot.waitSignal(window.case_loaded, timeout=20000):
        window.open_path(tmp_path / "ct.nii.gz")
    assert window.session.volume.shape == (24, 64, 64)
    np.testing.assert_array_equal(window.session.volume.data, vol.data)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("parts", "shape", "has_reference"),
    [
        (("ircadb-17",), (119, 512, 512), True),
        (("totalsegmentator", "subjects", "s0009"), None, True),
        (("totalsegmentator", "subjects", "s0002"), None, True),
        (("totalsegmentator", "reference_files", "example_ct_dicom"), (20, 512, 512), False),
        (("dcmqi-ct3slice",), (3, 512, 512), True),
    ],
)
def test_real_cases_open_with_their_masks(window, qtbot, parts, shape, has_reference):
    path = shared_path(*parts)
    with qtbot.waitSignal(window.case_loaded, timeout=120000):
        window.open_path(path)
    s = window.session
    if shape is not None:
        assert s.volume.shape == shape
    assert (s.layer("reference") is not None) == has_reference
    for view in window.views.values():
        view.repaint()
    if has_reference:
        with qtbot.waitSignal(window.metrics_panel.analysis_done, timeout=120000):
            pass
        assert window.metrics_panel.figures.columnCount() >= 1


@pytest.mark.realdata
def test_dataset_folder_lists_cases_and_opens_the_first(window, qtbot):
    path = shared_path("msd-liver-2d")
    with qtbot.waitSignal(window.case_loaded, timeout=120000):
        window.open_path(path)
    tree = window.case_list.tree
    assert tree.topLevelItemCount() > 100
    assert window.session.volume.shape[0] == 1
    assert window.session.layer("reference") is not None
    second = tree.topLevelItem(1)
    with qtbot.waitSignal(window.case_loaded, timeout=60000) as blocker:
        window.case_list._activate(second)
    assert blocker.args[0] == second.text(0)


@pytest.mark.realdata
def test_ircadb_lesion_table_jumps_to_each_tumour(window, qtbot):
    path = shared_path("ircadb-17")
    with qtbot.waitSignal(window.metrics_panel.analysis_done, timeout=120000):
        window.open_path(path)
    panel = window.metrics_panel
    assert panel.lesions.rowCount() == 2  # livertumor1 and livertumor2
    for row in range(2):
        panel.jump_to_row(row)
        lesion = panel._lesion_rows[row]
        expected = tuple(round(v) for v in lesion.centroid_zyx)
        assert window.session.cursor == expected
        assert window.session.layer("reference").labels.data[expected] == 2 or lesion.voxels < 50
        for view in window.views.values():
            view.repaint()
            p = view.cursor_point()
            assert abs(p.x() - view.width() / 2) <= 1 and abs(p.y() - view.height() / 2) <= 1


@pytest.mark.realdata
def test_real_dicom_load_reports_progress_and_keeps_the_window_responsive(window, qtbot):
    path = shared_path("ircadb-17")
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: beats.append(time.monotonic()))
    progress: list[float] = []
    timer.start()
    with qtbot.waitSignal(window.case_loaded, timeout=120000):
        worker = window.open_path(path)
        worker.progressed.connect(lambda f, _m: progress.append(f))
    timer.stop()
    gaps = np.diff(beats)
    print(
        f"ircadb-17 load: {len(progress)} progress reports, longest event-loop gap {gaps.max() * 1000:.0f} ms"
    )
    assert len(progress) >= 3
    assert gaps.max() < 1.0, f"event loop stalled for {gaps.max():.3f} s"


def test_a_worker_that_fails_at_once_still_reaches_handlers_connected_after_start(qtbot):
    """Callers connect right after start(); an instant failure must not be lost."""
    from livgui.ui.workers import Worker

    def boom(progress, cancel):
        raise ValueError("bad input")

    seen = []
    for _ in range(50):
        worker = Worker(boom, "instant failure")
        worker.start()
        worker.wait(50)  # give the thread every chance to run before we connect
        worker.failed.connect(lambda exc: seen.append(str(exc)))
        with qtbot.waitSignal(worker.ended, timeout=5000):
            pass
        worker.wait()
    assert seen == ["bad input"] * 50


def test_results_of_work_started_before_a_newer_case_are_dropped(window, qtbot):
    import threading

    release = threading.Event()
    applied = []
    worker = window.run_task(
        lambda progress, cancel: release.wait(10) and "old", "old work", applied.append
    )
    window.session.bump_generation()  # another case was opened meanwhile
    with qtbot.waitSignal(worker.ended, timeout=10000):
        release.set()
    qtbot.wait(20)
    assert applied == []
