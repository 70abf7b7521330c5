"""The evented case session: the state every view and panel shares (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from livgui.core.session import CaseSession
from livgui.core.volume import LabelMap
from tests.conftest import make_phantom


def _session() -> tuple[CaseSession, list[tuple[str, tuple]]]:
    vol, lab = make_phantom()
    s = CaseSession()
    events: list[tuple[str, tuple]] = []
    for name in (
        "case_changed",
        "cursor_changed",
        "window_changed",
        "layers_changed",
        "layer_changed",
        "lesion_selected",
    ):
        getattr(s, name).connect(lambda *a, n=name: events.append((n, a)))
    s.set_case(vol, "phantom")
    s.add_layer("reference", "reference", lab)
    return s, events


def test_opening_a_case_centres_the_cursor_and_announces_it():
    s, events = _session()
    assert s.cursor == (12, 32, 32)
    names = [n for n, _a in events]
    assert names[:3] == ["case_changed", "layers_changed", "cursor_changed"]
    assert "layers_changed" in names[3:]


def test_cursor_is_clamped_and_only_real_moves_are_announced():
    s, events = _session()
    events.clear()
    s.set_cursor((100, -5, 10.4))
    assert s.cursor == (23, 0, 10)
    s.set_cursor((23, 0, 10))
    assert [n for n, _a in events] == ["cursor_changed"]
    s.step_cursor(0, -3)
    assert s.cursor == (20, 0, 10)


def test_mask_on_another_grid_is_refused_naming_both_shapes():
    s, _ = _session()
    bad = LabelMap(np.zeros((3, 4, 5), np.uint8), make_phantom((3, 4, 5))[0].geometry)
    with pytest.raises(ValueError, match=r"\(3, 4, 5\).*\(24, 64, 64\)"):
        s.add_layer("prediction", "prediction", bad)


def test_layer_toggles_by_kind_and_outline():
    s, _ = _session()
    pred = s.layers[0].labels.copy("prediction")
    s.add_layer("prediction", "prediction", pred)
    assert s.toggle_kind_visible("reference") is False
    assert not s.layer("reference").visible and s.layer("prediction").visible
    assert s.toggle_kind_visible("reference") is True
    assert s.toggle_outline() == "outline"
    assert {la.style for la in s.layers} == {"outline"}
    assert s.toggle_outline() == "fill"


def test_window_presets_and_width_floor():
    s, _events = _session()
    s.apply_preset("liver")
    assert (s.window.level, s.window.width) == (60.0, 150.0)
    s.set_window(10, -50)
    assert s.window.width == 1.0
    with pytest.raises(KeyError, match="unknown window preset"):
        s.apply_preset("brain")


def test_stale_worker_results_are_dropped_after_a_new_case():
    s, _ = _session()
    gen = s.generation
    assert s.store_result("analysis", {"x": 1}, gen)
    vol, _lab = make_phantom(seed=1)
    s.set_case(vol, "other")
    assert not s.store_result("analysis", {"x": 2}, gen)
    assert "analysis" not in s.results


def test_selecting_a_lesion_moves_the_cursor_to_its_centroid():
    s, events = _session()
    s.select_lesion(2, (16.6, 24.2, 24.4))
    assert s.cursor == (17, 24, 24)
    assert ("lesion_selected", (2, (17, 24, 24))) in events


def test_readout_names_voxel_world_hu_and_label():
    s, _ = _session()
    s.set_cursor((13, 29, 20))
    r = s.readout()
    assert r.zyx == (13, 29, 20)
    assert r.labels["reference"] in {"liver", "lesion"}
    assert r.lps_mm == pytest.approx((-100 + 20 * 0.8, -80 + 29 * 0.8, 50 + 13 * 2.5))
    assert "HU" in r.text() and "LPS" in r.text()
    assert s.readout((99, 0, 0)) is None


def test_a_failing_subscriber_does_not_stop_the_others():
    s, _ = _session()
    seen = []
    s.cursor_changed.connect(lambda _p: 1 / 0)
    s.cursor_changed.connect(seen.append)
    s.set_cursor((1, 1, 1))
    assert seen == [(1, 1, 1)]


def test_reference_turns_to_outline_when_a_prediction_arrives():
    from livgui.core.session import CaseSession
    from tests.conftest import make_phantom

    vol, ref = make_phantom((8, 32, 32))
    s = CaseSession()
    s.set_case(vol, "c")
    s.add_layer("reference", "reference", ref)
    assert s.layer("reference").style == "fill"
    s.add_layer("prediction", "prediction", ref.copy("prediction"))
    assert s.layer("reference").style == "outline"
    assert s.layer("prediction").style == "fill"
    s.set_layer_style("reference", "fill")  # the user's later choice is kept
    s.add_layer("correction", "correction", ref.copy("correction"))
    assert s.layer("reference").style == "fill"
