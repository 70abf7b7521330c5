"""The journal copies the mask in its worker; edits made meanwhile are still recovered."""

from __future__ import annotations

import threading

import numpy as np

from livgui.core.editing.history import History
from livgui.core.editing.tools import BrushOptions, PlanePoint, brush
from livgui.core.geometry import Geometry
from livgui.library import recovery
from livgui.library.recovery import Journal, find_recoverable, recover


def test_edits_applied_while_the_worker_copies_the_mask_are_recovered(tmp_path, monkeypatch):
    labels = np.zeros((6, 64, 64), dtype=np.uint8)
    labels[2:4, 10:30, 10:30] = 1
    geometry = Geometry.from_spacing(labels.shape, (2.0, 0.8, 0.8))
    history = History(labels)

    copying = threading.Event()
    release = threading.Event()
    original_take = Journal._take_mirror

    def slow_take(self):
        copying.set()
        release.wait(10)  # edits land on the live mask before the copy is taken
        original_take(self)

    monkeypatch.setattr(Journal, "_take_mirror", slow_take)
    journal = Journal(tmp_path, "case-1", history.labels)
    journal.attach(history)
    assert copying.wait(10)
    for k, (row, col) in enumerate([(20, 20), (40, 40), (30, 50)]):
        at = PlanePoint("axial", 1 + k, row, col)
        history.commit(f"dab {k}", brush(labels, geometry, at, BrushOptions(8.0, label=2)))
    history.undo()
    release.set()
    assert journal.flush(10)
    journal.close()

    (info,) = find_recoverable(tmp_path)
    assert np.array_equal(recover(info), labels)
    assert recovery.mask_sha256(labels) == info.sha256
