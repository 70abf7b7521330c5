"""The one preprocessing definition: round trip, strict parsing, the arithmetic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from livgui.models.preprocess import Preprocessing, PreprocessingError, resize_planes


@pytest.mark.parametrize(
    "prep",
    [
        Preprocessing(),
        Preprocessing(hu_window=(0.0, 255.0), target_size=None, target_spacing=(1.5, 1.5)),
        Preprocessing(normalisation="zscore", mean=60.0, std=40.0, context_slices=2),
        Preprocessing(target_size=None, patch_size=(32, 64, 64)),
    ],
)
def test_json_round_trip_is_exact(prep):
    doc = json.loads(json.dumps(prep.to_json()))
    assert Preprocessing.from_json(doc) == prep


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"hu_window": [100, -100]}, "high > low"),
        ({"normalisation": "sigmoid"}, "normalisation"),
        ({"target_size": [256]}, "pair"),
        ({"context_slices": -1}, ">= 0"),
        ({"evil": "__import__('os')"}, "unknown preprocessing fields: evil"),
        ({"std": "nan"}, "number"),
        ({"hu_window": [0, float("inf")]}, "finite"),
    ],
)
def test_malformed_descriptions_are_refused_by_name(doc, message):
    with pytest.raises(PreprocessingError, match=message):
        Preprocessing.from_json(doc)


def test_minmax_matches_the_msd_slices_convention():
    """MSD 2D slices are HU clipped to [0, 255]; /255 gives the network's input."""
    prep = Preprocessing(hu_window=(0.0, 255.0))
    hu = np.array([-1000, 0, 100, 255, 3000], dtype=np.int16)
    assert np.allclose(prep.normalise(hu), [0, 0, 100 / 255, 1, 1])
    assert prep.background_value == 0.0
    assert torch.allclose(
        prep.normalise_tensor(torch.from_numpy(hu)), torch.from_numpy(prep.normalise(hu))
    )


def test_model_grid_by_size_spacing_or_native():
    assert Preprocessing(target_size=(256, 128)).model_grid((512, 512), (0.7, 0.7)) == (256, 128)
    by_mm = Preprocessing(target_size=None, target_spacing=(1.5, 1.0))
    assert by_mm.model_grid((512, 400), (0.75, 0.5)) == (256, 200)
    assert Preprocessing(target_size=None).model_grid((77, 55), (1.0, 1.0)) == (77, 55)


def test_resampling_round_trip_keeps_pixel_centres():
    """A one-pixel-thick bar keeps its centre after down- and up-sampling (no half-pixel shift)."""
    img = torch.zeros(1, 1, 64, 48)
    img[0, 0, 20:28, :] = 1.0
    back = resize_planes(resize_planes(img, (32, 24)), (64, 48))
    rows = back[0, 0, :, 10].numpy()
    assert np.isclose((rows * np.arange(64)).sum() / rows.sum(), 23.5, atol=1e-4)
