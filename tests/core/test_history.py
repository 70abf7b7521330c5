"""Undo history: one step per drag, byte budget, save/reload, and hypothesis properties."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livgui.core import Geometry
from livgui.core.atomicio import DiskFullError
from livgui.core.editing import (
    BrushOptions,
    History,
    PlanePoint,
    brush,
    decode_edit,
    encode_edit,
    polygon_fill,
    step_name,
)

GEOM = Geometry.from_spacing((6, 24, 24), (2.0, 1.0, 1.0))
PLANES = ("axial", "coronal", "sagittal")


def drag(hist: History, points: list[PlanePoint], opts: BrushOptions) -> None:
    """What the view does for one mouse drag: many dabs, one step."""
    hist.begin_step(
        step_name("Eraser" if opts.erase else "Brush", opts.label, points[0], opts.size_mm)
    )
    for p in points:
        hist.add(brush(hist.labels, GEOM, p, opts))
    hist.end_step()


def test_a_drag_is_one_named_undo_step() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    pts = [PlanePoint("axial", 3, 5, x) for x in range(2, 20)]
    drag(hist, pts, BrushOptions(size_mm=6.0, label=2))
    assert [e.name for e in hist.entries()] == ["Brush 6 mm on lesion, axial 3"]
    assert hist.undo() is not None and not labels.any()
    assert hist.redo() is not None and labels[3, 5, 2:20].all()
    assert not hist.can_redo


def test_new_step_after_undo_clears_redo_and_goto_moves_through_the_list() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    states = [labels.copy()]
    for x in (4, 10, 16):
        drag(hist, [PlanePoint("axial", 2, 12, x)], BrushOptions(size_mm=3.0))
        states.append(labels.copy())
    hist.goto(1)
    assert np.array_equal(labels, states[1])
    assert [e.done for e in hist.entries()] == [True, False, False]
    hist.goto(3)
    assert np.array_equal(labels, states[3])
    hist.undo()
    drag(hist, [PlanePoint("axial", 0, 0, 0)], BrushOptions(size_mm=1.0))
    assert len(hist.entries()) == 3 and not hist.can_redo


def test_cancel_step_reverts_the_drag_and_empty_drags_make_no_step() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    hist.begin_step("Brush")
    hist.add(brush(labels, GEOM, PlanePoint("axial", 1, 5, 5), BrushOptions()))
    hist.cancel_step()
    assert not labels.any() and not hist.entries()
    drag(hist, [PlanePoint("axial", 1, 5, 5)], BrushOptions(erase=True))
    assert not hist.entries()
    with pytest.raises(RuntimeError, match="outside begin_step"):
        hist.add(brush(labels, GEOM, PlanePoint("axial", 1, 5, 5), BrushOptions()))


def test_byte_budget_drops_the_oldest_steps_with_a_notice() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    notices: list[str] = []
    hist = History(labels, budget_bytes=3000, on_notice=notices.append)
    for z in range(6):
        polygon_fill(labels, "axial", z, [(0, 0), (0, 23), (23, 23), (23, 0)], label=1)
        hist.commit(f"fill {z}", _last_edit(hist, labels, z))
    assert hist.nbytes <= 3000
    assert notices and "Oldest undo step 'fill 0' dropped" in notices[0]
    while hist.undo():
        pass
    assert labels[0].all() and not labels[5].any()  # dropped steps can no longer be undone


def _last_edit(hist: History, labels: np.ndarray, z: int):  # type: ignore[no-untyped-def]
    from livgui.core.editing import Edit

    before = labels.copy()
    before[z] = 0
    return Edit.from_boxes((0, 0, 0), before, labels.copy())


def test_history_survives_save_and_reload(tmp_path: Path) -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    drag(hist, [PlanePoint("coronal", 10, 2, x) for x in range(3, 9)], BrushOptions(size_mm=4.0))
    drag(hist, [PlanePoint("sagittal", 7, 3, 3)], BrushOptions(size_mm=5.0, label=2, sphere=True))
    drag(hist, [PlanePoint("axial", 0, 20, 20)], BrushOptions(size_mm=3.0))
    hist.undo()
    end, mid = labels.copy(), labels.copy()
    path = hist.save(tmp_path / "case.history")
    reloaded = History.load(path, labels)
    assert [e.name for e in reloaded.entries()] == [e.name for e in hist.entries()]
    reloaded.redo()
    reloaded.undo()
    reloaded.undo()
    reloaded.undo()
    assert not labels.any()
    reloaded.goto(2)
    assert np.array_equal(labels, mid) and np.array_equal(labels, end)
    other = np.zeros(GEOM.shape, np.uint8)
    with pytest.raises(ValueError, match="another version of this mask"):
        History.load(path, other)


def test_damaged_history_file_is_refused_with_its_name(tmp_path: Path) -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    drag(hist, [PlanePoint("axial", 1, 5, 5)], BrushOptions())
    path = hist.save(tmp_path / "h.bin")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])
    with pytest.raises(ValueError, match=r"h\.bin"):
        History.load(path, labels)
    path.write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a LivGUI history file"):
        History.load(path, labels)


def test_disk_full_while_saving_history_keeps_old_file_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    drag(hist, [PlanePoint("axial", 1, 5, 5)], BrushOptions())
    path = hist.save(tmp_path / "h.bin")
    old_bytes = path.read_bytes()
    drag(hist, [PlanePoint("axial", 2, 9, 9)], BrushOptions())
    state = labels.copy()

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DiskFullError, match="disk full"):
        hist.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.bin"]  # no partial file left
    assert np.array_equal(labels, state) and len(hist.entries()) == 2
    hist.undo()
    assert labels.sum() < state.sum()


# --- properties -------------------------------------------------------------------------

dab = st.tuples(
    st.sampled_from(PLANES),
    st.integers(0, 5),  # slice (clamped per plane)
    st.floats(0, 23),
    st.floats(0, 23),
    st.sampled_from([1.0, 3.0, 6.0]),
    st.sampled_from([1, 2]),
    st.booleans(),
    st.booleans(),
)
op = st.one_of(
    st.tuples(st.just("drag"), st.lists(dab, min_size=1, max_size=4)),
    st.tuples(st.just("undo"), st.just([])),
    st.tuples(st.just("redo"), st.just([])),
)


def run_op(hist: History, kind: str, dabs: list) -> None:  # type: ignore[type-arg]
    if kind == "undo":
        hist.undo()
    elif kind == "redo":
        hist.redo()
    else:
        plane, index, _row, _col, size, label, erase, sphere = dabs[0]
        opts = BrushOptions(size_mm=size, label=label, erase=erase, sphere=sphere)
        n_axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
        index = min(index, GEOM.shape[n_axis] - 1)
        rows = GEOM.shape[1] if plane == "axial" else GEOM.shape[0]
        pts = [PlanePoint(plane, index, min(d[2], rows - 1), d[3]) for d in dabs]
        drag(hist, pts, opts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=25), st.integers(0, 2))
def test_undo_all_is_start_and_redo_all_is_end(ops: list, seed: int) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 3, GEOM.shape, dtype=np.uint8) * rng.integers(
        0, 2, GEOM.shape, dtype=np.uint8
    )
    labels = start.copy()
    hist = History(labels)
    for kind, dabs in ops:
        run_op(hist, kind, dabs)
    hist.goto(len(hist.entries()))
    end = labels.copy()
    while hist.undo():
        pass
    assert np.array_equal(labels, start)
    while hist.redo():
        pass
    assert np.array_equal(labels, end)
    for step in hist.steps():  # the binary delta form round-trips exactly
        again = decode_edit(encode_edit(step.edit))
        assert again.box == step.edit.box and again.changed == step.edit.changed


@settings(max_examples=40, deadline=None)
@given(st.lists(op, min_size=1, max_size=20), st.lists(st.integers(0, 20), min_size=1, max_size=6))
def test_goto_any_position_reproduces_the_state_after_that_many_steps(
    ops: list, targets: list[int]
) -> None:  # type: ignore[type-arg]
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    for kind, dabs in ops:
        if kind == "drag":
            run_op(hist, kind, dabs)
    states = [np.zeros(GEOM.shape, np.uint8)]
    replay = np.zeros(GEOM.shape, np.uint8)
    for s in hist.steps():
        s.edit.apply(replay)
        states.append(replay.copy())
    for t in targets:
        pos = min(t, len(states) - 1)
        hist.goto(pos)
        assert np.array_equal(labels, states[pos])
