"""The one geometry convention: memory is (z, y, x) with x->L, y->P, z->S."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livgui.core.geometry import Geometry, orientation_codes, ras_to_lps, reorientation_to_lps


def _file_affine_lps(
    perm: tuple[int, int, int], signs: tuple[int, int, int], spacing=(0.7, 0.8, 2.5)
):
    """A file affine whose file axis i points along world axis perm[i] with sign signs[i]."""
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i in range(3):
        aff[perm[i], i] = signs[i] * spacing[i]
    aff[:3, 3] = (10.0, -20.0, 30.0)
    return aff


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("signs", list(itertools.product((1, -1), repeat=3)))
def test_every_axis_order_lands_lps_and_keeps_world_positions(perm, signs):
    shape = (5, 6, 7)
    aff = _file_affine_lps(perm, signs)
    data = np.arange(np.prod(shape)).reshape(shape)
    reo, mem_aff = reorientation_to_lps(aff, shape)
    mem = reo.to_memory(data)
    geom = Geometry(mem.shape, mem_aff)
    assert geom.orientation == ("L", "P", "S")
    assert np.all(np.diag(geom.affine)[:3] > 0)
    # a marker voxel keeps its world coordinate
    marker = (1, 4, 2)
    world_file = aff[:3, :3] @ np.array(marker, float) + aff[:3, 3]
    zyx = np.argwhere(mem == data[marker])[0]
    assert np.allclose(geom.index_to_world(zyx), world_file)
    # and the memory -> file round trip is exact
    assert np.array_equal(reo.to_file(mem), data)


def test_ras_and_lps_codes():
    ras_identity = np.eye(4)
    assert orientation_codes(ras_to_lps(ras_identity)) == ("R", "A", "S")
    assert orientation_codes(np.eye(4)) == ("L", "P", "S")


@settings(max_examples=50, deadline=None)
@given(st.floats(-30, 30), st.floats(-30, 30))
def test_oblique_affines_round_trip_world_coordinates(a_deg, b_deg):
    a, b = np.radians(a_deg), np.radians(b_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([-0.7, 0.9, -2.0])
    shape = (8, 9, 10)
    reo, mem_aff = reorientation_to_lps(aff, shape)
    geom = Geometry(reo.to_memory(np.zeros(shape)).shape, mem_aff)
    idx = np.array([3, 4, 5])
    file_world = aff[:3, :3] @ idx + aff[:3, 3]
    mem_idx = np.argwhere(
        reo.to_memory(np.arange(720).reshape(shape)) == np.ravel_multi_index(idx, shape)
    )[0]
    assert np.allclose(geom.index_to_world(mem_idx), file_world)
    assert np.allclose(geom.world_to_index(file_world), mem_idx)


def test_spacing_and_voxel_volume():
    g = Geometry.from_spacing((10, 20, 30), (2.0, 0.5, 0.75))
    assert g.spacing == (2.0, 0.5, 0.75)
    assert g.voxel_volume_ml == pytest.approx(2.0 * 0.5 * 0.75 / 1000)
    assert g.differences(Geometry.from_spacing((10, 20, 30), (2.0, 0.5, 0.8))) == ["spacing"]
