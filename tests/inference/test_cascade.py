"""The cascade keeps geometry: oracle networks must reproduce numpy thresholds exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from livgui.core import LabelMap, SourceInfo, Volume
from livgui.inference.cascade import CascadeOptions, Segmenter
from livgui.inference.predictor import InferenceError
from livgui.models.preprocess import Preprocessing
from tests.conftest import make_phantom
from tests.inference.oracles import dice, install_oracles, reference, synthetic_ct, temp_store

CASES = [
    # shape (z, y, x), spacing (z, y, x) mm, liver-stage grid (rows, cols), lesion-stage grid
    ((16, 160, 128), (2.5, 0.8, 1.1), (80, 64), None),
    ((12, 150, 190), (3.0, 1.2, 0.9), (76, 96), None),
    ((20, 120, 96), (1.0, 0.7, 0.7), (60, 48), (90, 72)),
]


@pytest.mark.parametrize(("shape", "spacing", "grid1", "grid2"), CASES)
def test_oracle_cascade_matches_numpy_thresholds(tmp_path, shape, spacing, grid1, grid2):
    volume = synthetic_ct(shape, spacing)
    liver_prep = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=grid1)
    lesion_prep = Preprocessing(hu_window=(-500.0, 1500.0), target_size=grid2)
    liver, lesion, _ = install_oracles(temp_store(tmp_path), liver_prep, lesion_prep)
    result = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu")).run(volume)
    body, bone = reference(volume.hu())
    assert result.labels.geometry is volume.geometry
    assert set(np.unique(result.labels.data)) <= {0, 1, 2}
    assert dice(result.labels.data > 0, body) >= 0.98
    assert dice(result.labels.data == 2, bone) >= 0.98
    # the separate "table" is dropped by the largest-component step
    assert not result.labels.data[:, int(shape[1] * 0.94)].any()
    assert result.model_ids == {"liver": liver.model_id, "lesion": lesion.model_id}
    assert {"liver_inference", "lesion_inference", "total"} <= set(result.timings_s)


def test_numpy_components_give_the_same_labels_as_scipy(tmp_path):
    volume = synthetic_ct((10, 96, 80), (2.0, 1.0, 1.0))
    liver, lesion, _ = install_oracles(temp_store(tmp_path))
    runs = [
        Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu", use_scipy=flag))
        .run(volume)
        .labels.data
        for flag in (True, False)
    ]
    assert np.array_equal(runs[0], runs[1])


def test_one_stage_oracle_predicts_all_three_labels(tmp_path):
    volume = synthetic_ct((12, 96, 80), (2.0, 1.0, 1.2))
    _, _, onestage = install_oracles(temp_store(tmp_path))
    result = Segmenter(onestage=onestage, options=CascadeOptions(device="cpu")).run(volume)
    hu = volume.hu()
    assert dice(result.labels.data > 0, hu > -200) >= 0.98
    assert dice(result.labels.data == 2, hu > 300) >= 0.98
    assert result.model_ids == {"onestage": onestage.model_id}


def test_liver_only_cascade_and_phantom_alignment(tmp_path):
    """On the conftest phantom a 70 HU oracle finds its liver (lesions are darker holes)."""
    from livgui.models.oracle import oracle_bundle

    volume, ref = make_phantom(shape=(24, 96, 80), spacing=(2.5, 0.8, 0.8))
    store = temp_store(tmp_path)
    prep = Preprocessing(hu_window=(-100.0, 200.0), target_size=(48, 40))
    bundle = store.install(*oracle_bundle("phantom-liver", "liver", (70.0,), prep))
    result = Segmenter(liver=bundle, options=CascadeOptions(device="cpu")).run(volume)
    assert set(np.unique(result.labels.data)) <= {0, 1}
    assert dice(result.labels.data == 1, ref.data == 1) >= 0.95
    # the liver is on the patient's right: low x in memory
    assert np.argwhere(result.labels.data)[:, 2].mean() < volume.shape[2] / 2


def test_nothing_found_gives_an_empty_map_with_a_notice(tmp_path):
    volume = Volume(
        np.full((4, 32, 32), -1000, np.int16), synthetic_ct((4, 32, 32), (1, 1, 1)).geometry
    )
    liver, lesion, _ = install_oracles(temp_store(tmp_path))
    result = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu")).run(volume)
    assert not result.labels.data.any()
    assert "no liver found" in result.notices


def test_non_finite_input_is_refused_or_replaced_with_a_notice(tmp_path):
    base = synthetic_ct((6, 64, 64), (2.0, 1.0, 1.0))
    data = base.hu()
    data[2, 10, 10] = np.nan
    data[3, 20, 20] = np.inf
    volume = Volume(data, base.geometry, name="nan-case")
    liver, lesion, _ = install_oracles(temp_store(tmp_path))
    with pytest.raises(InferenceError, match="2 voxels are NaN/Inf"):
        Segmenter(liver=liver, options=CascadeOptions(device="cpu")).run(volume)
    opts = CascadeOptions(device="cpu", non_finite="replace")
    result = Segmenter(liver=liver, lesion=lesion, options=opts).run(volume)
    assert any("2 NaN/Inf voxels replaced" in n for n in result.notices)
    assert np.isnan(volume.data[2, 10, 10])  # the caller's volume is not modified


def test_non_uniform_spacing_volumes_are_refused(tmp_path):
    base = synthetic_ct((6, 64, 64), (2.0, 1.0, 1.0))
    flagged = dataclasses.replace(
        base, source=SourceInfo("/data/series", "dicom", header={"nonuniform": True})
    )
    liver, _, _ = install_oracles(temp_store(tmp_path))
    with pytest.raises(InferenceError, match="non-uniform slice spacing"):
        Segmenter(liver=liver, options=CascadeOptions(device="cpu")).run(flagged)


def test_stage_mismatch_is_refused(tmp_path):
    liver, lesion, onestage = install_oracles(temp_store(tmp_path))
    with pytest.raises(InferenceError, match="lesion model"):
        Segmenter(liver=lesion)
    with pytest.raises(InferenceError, match="either"):
        Segmenter(liver=liver, onestage=onestage)


def test_result_json_carries_notice_models_device_and_volumes(tmp_path):
    volume = synthetic_ct((8, 64, 64), (2.0, 1.0, 1.0))
    liver, lesion, _ = install_oracles(temp_store(tmp_path))
    result = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu")).run(volume)
    doc = result.to_json()
    assert doc["notice"] == "research use only, not for diagnosis"
    assert doc["device"].startswith("cpu")
    assert doc["models"]["liver"].startswith("oracle-liver@")
    ml = volume.geometry.voxel_volume_ml
    assert doc["volumes_ml"]["lesion"] == pytest.approx((result.labels.data == 2).sum() * ml)
    assert isinstance(result.labels, LabelMap)


@pytest.mark.parametrize("seed", range(4))
def test_chunked_bounding_box_equals_the_tight_box(seed):
    from livgui.inference.components import bounding_box

    rng = np.random.default_rng(seed)
    mask = rng.random((70, 9, 11)) > 0.995
    ticks = []
    box = bounding_box(mask, tick=lambda: ticks.append(1), chunk=8)
    where = np.argwhere(mask)
    expected = tuple(
        slice(int(lo), int(hi) + 1) for lo, hi in zip(where.min(0), where.max(0), strict=True)
    )
    assert box == expected
    assert len(ticks) == 9  # one per 8-plane chunk: progress/cancel between them
    assert bounding_box(np.zeros((5, 4, 4), bool)) is None


def test_cascade_progress_is_monotone_and_reaches_every_phase(tmp_path):
    volume = synthetic_ct((12, 96, 80), (2.0, 1.0, 1.0))
    liver, lesion, _ = install_oracles(temp_store(tmp_path))
    seen: list[tuple[float, str]] = []
    Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu")).run(
        volume, progress=lambda f, m: seen.append((f, m))
    )
    fractions = [f for f, _m in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    phases = {m.split(":")[0] for _f, m in seen}
    assert {"liver", "liver box", "lesion", "merge", "done"} <= phases
