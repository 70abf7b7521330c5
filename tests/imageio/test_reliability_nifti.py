"""RELIABILITY rows 1-9 and 31 for NIfTI: every bad input is built inside the test."""

from __future__ import annotations

import builtins
import errno
import gzip
import hashlib
import io
import os
import re
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from livgui.core import Geometry, LabelMap, Volume
from livgui.core.atomicio import DiskFullError, sha256_file
from livgui.imageio import gz
from livgui.imageio.errors import ImageReadError, ImageWriteError
from livgui.imageio.maskcheck import geometry_mismatch
from livgui.imageio.nifti import read_nifti, read_nifti_labels, write_mask_nifti

RAS = np.diag([0.8, 0.8, 2.5, 1.0])


def save_nifti(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray = RAS,
    qform: np.ndarray | None = None,
    dtype: type | None = None,
) -> Path:
    """Save ``data`` (file order i, j, k) with sform = affine (code 2), qform = qform/affine."""
    img = nib.Nifti1Image(data, affine, dtype=dtype or data.dtype)
    img.set_sform(affine, code=2)
    img.set_qform(affine if qform is None else qform, code=1)
    nib.save(img, str(path))
    return path


def noise_volume(shape=(40, 36, 30), seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1500, size=shape).astype(np.int16)


def mask_for(shape, seed=2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=shape).astype(np.uint8)


# ---------------------------------------------------------------- row 1: truncated files


def test_row1_truncated_gz_is_reported_and_other_files_still_open(tmp_path):
    good = save_nifti(tmp_path / "good.nii.gz", noise_volume())
    bad = tmp_path / "bad.nii.gz"
    blob = good.read_bytes()
    bad.write_bytes(blob[: len(blob) // 2])

    with pytest.raises(ImageReadError) as err:
        read_nifti(bad)
    assert "file is incomplete or corrupt" in str(err.value)
    assert str(bad) in str(err.value)
    # Another case opens normally after the failure.
    assert read_nifti(good).shape == (30, 36, 40)


def test_row1_truncated_plain_nii_and_corrupt_middle(tmp_path):
    good = save_nifti(tmp_path / "good.nii", noise_volume())
    cut = tmp_path / "cut.nii"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ImageReadError, match="file is incomplete or corrupt"):
        read_nifti(cut)

    gzipped = save_nifti(tmp_path / "g.nii.gz", noise_volume())
    blob = bytearray(gzipped.read_bytes())
    middle = len(blob) // 2
    blob[middle : middle + 64] = bytes(64)  # damage the deflate stream
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match="file is incomplete or corrupt"):
        read_nifti(damaged)


def test_row1_damaged_gzip_checksum_is_detected(tmp_path):
    good = save_nifti(tmp_path / "good.nii.gz", noise_volume())
    blob = bytearray(good.read_bytes())
    blob[-8] ^= 0xFF  # CRC32 of the member: the voxels inflate fine, the check must fail
    bad = tmp_path / "crc.nii.gz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ImageReadError, match="file is incomplete or corrupt"):
        read_nifti(bad)


def test_row1_truncated_mask_is_reported(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume()))
    m = save_nifti(tmp_path / "m.nii.gz", mask_for((40, 36, 30)))
    blob = m.read_bytes()
    m.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageReadError, match="file is incomplete or corrupt"):
        read_nifti_labels(m, vol)


# ------------------------------------------------------- row 2: renamed files, random bytes


def test_row2_plain_nii_named_gz_is_read_by_content(tmp_path):
    data = noise_volume()
    plain = save_nifti(tmp_path / "plain.nii", data)
    renamed = tmp_path / "renamed.nii.gz"
    renamed.write_bytes(plain.read_bytes())
    a, b = read_nifti(plain), read_nifti(renamed)
    np.testing.assert_array_equal(a.data, b.data)
    assert np.allclose(a.geometry.affine, b.geometry.affine)

    gzipped = save_nifti(tmp_path / "z.nii.gz", data)
    named_plain = tmp_path / "named_plain.nii"
    named_plain.write_bytes(gzipped.read_bytes())
    np.testing.assert_array_equal(read_nifti(named_plain).data, a.data)


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(0).bytes(5000),
        b"",
        b"hello",
        gzip.compress(np.random.default_rng(1).bytes(5000)),
    ],
    ids=["random", "empty", "short", "gzip-of-random"],
)
def test_row2_not_a_nifti_file(tmp_path, content):
    p = tmp_path / "junk.nii.gz"
    p.write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        read_nifti(p)
    assert "not a NIfTI file" in str(err.value)
    assert str(p) in str(err.value)


def test_row2_random_bytes_behind_gzip_magic_are_corrupt_not_a_crash(tmp_path):
    p = tmp_path / "junk.nii.gz"
    p.write_bytes(gz.GZIP_MAGIC + np.random.default_rng(3).bytes(4000))
    with pytest.raises(ImageReadError, match=r"incomplete or corrupt|not a NIfTI"):
        read_nifti(p)


# ---------------------------------------------------------- row 3: absurd declared size


def _huge_header_file(path: Path, shape=(2000, 2000, 2000)) -> Path:
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4
    assert len(raw) == 352
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


class _Mem:
    available = 8 << 30


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_row3_huge_header_refused_before_allocating(tmp_path, monkeypatch, name):
    from livgui.imageio import nifti_core

    p = _huge_header_file(tmp_path / name)
    monkeypatch.setattr(nifti_core.psutil, "virtual_memory", _Mem)
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError) as err:
            read_nifti(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(err.value)
    # 2000**3 float32 = 29.80 GiB (+ a few MiB of reading buffer) against 8 GiB available.
    assert re.search(
        r"needs 29\.8\d GiB of memory to load but only 8\.00 GiB is available", message
    )
    assert str(p) in message
    assert peak < 20 * (1 << 20), f"allocated {peak} bytes before refusing"


def test_row3_refused_against_the_real_available_memory(tmp_path):
    p = _huge_header_file(tmp_path / "huger.nii.gz", shape=(4000, 4000, 4000))  # 238 GiB
    tracemalloc.start()
    try:
        with pytest.raises(ImageReadError, match=r"needs 238\.\d\d GiB of memory"):
            read_nifti(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * (1 << 20)


def test_row3_masks_and_max_bytes_are_refused_too(tmp_path):
    p = _huge_header_file(tmp_path / "huge_mask.nii.gz")
    with pytest.raises(ImageReadError, match="GiB of memory"):
        read_nifti_labels(p)
    small = save_nifti(tmp_path / "small.nii.gz", noise_volume())
    with pytest.raises(ImageReadError, match=r"needs 0\.00 GiB.*only 0\.00 GiB"):
        read_nifti(small, max_bytes=1000)
    assert read_nifti(small, max_bytes=10 << 20).shape == (30, 36, 40)


# ------------------------------------------------------------------ row 4: NaN / Inf


def test_row4_nan_and_inf_load_and_window_on_the_finite_range(tmp_path):
    data = np.linspace(-100, 300, 8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10)
    data[1, 2, 3] = np.nan
    data[4, 5, 6] = np.inf
    data[0, 0, 0] = -np.inf
    vol = read_nifti(save_nifti(tmp_path / "nan.nii.gz", data))
    assert vol.data.dtype == np.float32
    assert vol.has_non_finite()
    assert np.isnan(vol.data).sum() == 1 and np.isinf(vol.data).sum() == 2
    lo, hi = vol.finite_range()
    finite = data[np.isfinite(data)]
    assert (lo, hi) == (float(finite.min()), float(finite.max()))


# ------------------------------------------------------------- row 5: qform != sform


def test_row5_qform_sform_disagreement_warns_and_mask_keeps_both(tmp_path):
    qform = RAS.copy()
    qform[:3, 3] = (5.0, -3.0, 2.0)
    img_path = save_nifti(tmp_path / "qs.nii.gz", noise_volume((10, 12, 8)), RAS, qform)
    vol = read_nifti(img_path)
    assert len(vol.source.warnings) == 1
    assert "qform and sform disagree" in vol.source.warnings[0]
    assert "using the sform" in vol.source.warnings[0]
    # The sform is the one used (nibabel's rule): file voxel (0, 0, 0) sits at world 0,
    # which is memory (z, y, x) = (0, 11, 9) after the R->L and A->P flips.
    assert np.allclose(vol.source.header["affine_ras"], RAS)
    assert np.allclose(vol.geometry.world_to_index(np.zeros(3)), [0, 11, 9])

    labels = LabelMap(np.zeros(vol.shape, np.uint8), vol.geometry)
    labels.data[1, 2, 3] = 1
    out = tmp_path / "mask.nii.gz"
    write_mask_nifti(labels, out, vol)
    image, mask = nib.load(str(img_path)), nib.load(str(out))
    for coded in ("get_qform", "get_sform"):
        a, code_a = getattr(image, coded)(coded=True)
        b, code_b = getattr(mask, coded)(coded=True)
        assert code_a == code_b and code_a > 0
        assert np.allclose(a, b)


def test_row5_agreeing_or_uncoded_transforms_do_not_warn(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ok.nii.gz", noise_volume((10, 12, 8))))
    assert vol.source.warnings == ()
    img = nib.Nifti1Image(noise_volume((10, 12, 8)), RAS)
    img.set_qform(np.diag([3.0, 3.0, 3.0, 1.0]), code=0)  # unused qform: not a conflict
    img.set_sform(RAS, code=2)
    nib.save(img, str(tmp_path / "q0.nii.gz"))
    assert read_nifti(tmp_path / "q0.nii.gz").source.warnings == ()


# -------------------------------------------------- row 6: orientations round trip


def _rotation(deg_z: float, deg_x: float) -> np.ndarray:
    cz, sz = np.cos(np.radians(deg_z)), np.sin(np.radians(deg_z))
    cx, sx = np.cos(np.radians(deg_x)), np.sin(np.radians(deg_x))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ rx


def _affine(linear: np.ndarray, origin=(-40.0, 25.0, 60.0)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = linear
    a[:3, 3] = origin
    return a


ORIENTATIONS = {
    "RAS": _affine(np.diag([0.8, 0.9, 2.5])),
    "LAS": _affine(np.diag([-0.8, 0.9, 2.5])),
    "LPS": _affine(np.diag([-0.8, -0.9, 2.5])),
    "oblique": _affine(_rotation(25, 12) @ np.diag([0.8, 0.9, 2.5])),
    # file axes (i, j, k) -> (S, A, R): a sagittal stack, read through the raw-buffer path
    "sagittal-SAR": _affine(np.array([[0, 0, 0.8], [0, 0.9, 0], [2.5, 0, 0]])),
    "coronal-LIA": _affine(np.array([[-0.8, 0, 0], [0, 0, 0.9], [0, -2.5, 0]])),
}


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_row6_marker_keeps_its_world_position(tmp_path, name):
    affine = ORIENTATIONS[name]
    data = noise_volume((9, 11, 7), seed=4)
    img_path = save_nifti(tmp_path / f"{name}.nii.gz", data, affine)
    vol = read_nifti(img_path)
    assert vol.geometry.orientation == ("L", "P", "S")
    assert vol.data.flags.c_contiguous

    zyx = np.array([2, 3, 4])
    world_lps = vol.geometry.index_to_world(zyx)
    world_ras = world_lps * [-1, -1, 1]
    # The image voxel at that world point in the file is the one shown in memory.
    ijk = np.linalg.solve(affine[:3, :3], world_ras - affine[:3, 3])
    i, j, k = np.round(ijk).astype(int)
    assert np.allclose(ijk, (i, j, k), atol=1e-6)
    assert vol.data[tuple(zyx)] == data[i, j, k]

    labels = LabelMap.empty_like(vol)
    labels.data[tuple(zyx)] = 1
    out = tmp_path / f"{name}_mask.nii.gz"
    write_mask_nifti(labels, out, vol)
    mask = nib.load(str(out))
    assert mask.shape == data.shape  # written back in the file's own axis order
    found = np.argwhere(np.asarray(mask.dataobj) == 1)
    assert found.shape == (1, 3)
    assert tuple(found[0]) == (i, j, k)
    reloaded = mask.affine @ np.append(found[0], 1.0)
    assert np.allclose(reloaded[:3], world_ras, atol=1e-4)
    # And the mask read back by LivGUI sits on the same voxel in memory.
    back = read_nifti_labels(out, vol)
    assert back.source.warnings == ()
    assert np.argwhere(back.data == 1).tolist() == [zyx.tolist()]


def test_row6_memory_axes_point_left_posterior_superior(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ras.nii.gz", noise_volume((9, 11, 7)), RAS))
    a = vol.geometry.affine
    # x index -> patient left (+x LPS), y -> posterior (+y), z -> superior (+z).
    assert a[0, 0] > 0 and a[1, 1] > 0 and a[2, 2] > 0
    assert vol.spacing == pytest.approx((2.5, 0.8, 0.8))


# ------------------------------------------------------ row 7: mask shape != image shape


def test_row7_shape_mismatch_names_both_shapes_before_reading_voxels(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    m = save_nifti(tmp_path / "m.nii.gz", mask_for((10, 12, 9)))
    # Truncate the mask: the shape error must come from the header, before any voxel.
    blob = m.read_bytes()
    m.write_bytes(blob[: len(blob) // 2])
    labels_before = LabelMap.empty_like(vol)
    labels_before.data[2, 2, 2] = 1
    with pytest.raises(ImageReadError) as err:
        read_nifti_labels(m, vol)
    message = str(err.value)
    assert "(9, 12, 10)" in message  # mask, memory order (z, y, x)
    assert "(8, 12, 10)" in message  # image
    assert labels_before.data.sum() == 1  # current edits untouched


# ------------------------------------------ row 8: same shape, other spacing/origin/direction


@pytest.mark.parametrize(
    ("field", "mask_affine"),
    [
        ("spacing", np.diag([1.0, 0.8, 2.5, 1.0])),
        ("origin", _affine(np.diag([0.8, 0.8, 2.5]), origin=(0.0, 0.0, 5.0))),
        ("direction", _affine(_rotation(5, 0) @ np.diag([0.8, 0.8, 2.5]), origin=(0, 0, 0))),
    ],
)
def test_row8_geometry_difference_is_a_warning_naming_the_field(tmp_path, field, mask_affine):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    m = save_nifti(tmp_path / "m.nii.gz", mask_for((10, 12, 8)), mask_affine)
    labels = read_nifti_labels(m, vol)
    assert labels.source.warnings, "expected a warning"
    assert any(w.startswith(f"mask {field}") for w in labels.source.warnings)
    assert labels.geometry is vol.geometry  # on the image grid; the user decides
    expected = vol.source.reorientation.to_memory(mask_for((10, 12, 8)))
    np.testing.assert_array_equal(labels.data, expected)


def test_row8_rounding_level_differences_do_not_warn(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    nearly = RAS.copy()
    nearly[:3, :3] += 1e-4
    m = save_nifti(tmp_path / "m.nii.gz", mask_for((10, 12, 8)), nearly)
    assert read_nifti_labels(m, vol).source.warnings == ()
    same = Geometry(vol.shape, vol.geometry.affine)
    assert geometry_mismatch(vol, same) == []


# --------------------------------------------------- row 9: label values and mask dtype


@pytest.mark.parametrize(
    ("values", "dtype", "listed"),
    [
        ([0, 1, 2, 7], np.uint8, "7"),
        ([0, 1, 0.5], np.float32, "0.5"),
        ([0, 1, 2, 300, -1], np.int64, "-1, 300"),
        ([0, 1, np.nan], np.float64, "nan"),
    ],
)
def test_row9_unexpected_values_are_listed_and_refused(tmp_path, values, dtype, listed):
    data = np.zeros((6, 5, 4), dtype=dtype)
    data.flat[: len(values)] = values
    m = save_nifti(tmp_path / "m.nii.gz", data, dtype=dtype)
    with pytest.raises(ImageReadError) as err:
        read_nifti_labels(m)
    assert f"unexpected label values {listed}" in str(err.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int16, np.uint8])
def test_row9_integral_masks_of_any_type_are_accepted_as_uint8(tmp_path, dtype):
    data = mask_for((6, 5, 4)).astype(dtype)
    labels = read_nifti_labels(save_nifti(tmp_path / "m.nii.gz", data, dtype=dtype))
    assert labels.data.dtype == np.uint8
    np.testing.assert_array_equal(labels.data, labels.source.reorientation.to_memory(data))


def test_row9_label_mappings(tmp_path):
    data = np.zeros((6, 5, 4), np.uint8)
    data[1, 1, 1], data[2, 2, 2], data[3, 3, 3] = 5, 255, 7  # liver=5 (TotalSegmentator)
    m = save_nifti(tmp_path / "m.nii.gz", data, dtype=np.uint8)
    kept = read_nifti_labels(m, keep={5: 1})
    assert sorted(np.unique(kept.data).tolist()) == [0, 1] and kept.data.sum() == 1
    with pytest.raises(ImageReadError, match="unexpected label values 7"):
        read_nifti_labels(m, label_values={5: 1, 255: 1})  # 7 left unmapped
    mapped = read_nifti_labels(m, label_values={5: 1, 255: 2, 7: 0})
    assert sorted(mapped.data[mapped.data > 0].tolist()) == [1, 2]
    with pytest.raises(ValueError, match="either"):
        read_nifti_labels(m, label_values={5: 1}, keep={5: 1})


def test_row9_written_masks_are_uint8_without_scaling(tmp_path):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    labels = LabelMap(vol.source.reorientation.to_memory(mask_for((10, 12, 8))), vol.geometry)
    labels.data = np.ascontiguousarray(labels.data)
    out = tmp_path / "mask.nii.gz"
    write_mask_nifti(labels, out, vol)
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.uint8
    raw_header = nib.Nifti1Header.from_fileobj(io.BytesIO(gzip.decompress(out.read_bytes())))
    slope, inter = float(raw_header["scl_slope"]), float(raw_header["scl_inter"])
    assert (np.isnan(slope) or slope == 1.0) and (np.isnan(inter) or inter == 0.0)
    assert raw_header["descrip"].tobytes().rstrip(b"\0") == (
        b"LivGUI mask - research use only, not for diagnosis"
    )
    np.testing.assert_array_equal(np.asarray(img.dataobj), mask_for((10, 12, 8)))

    bad = labels.copy()
    bad.data[0, 0, 0] = 7
    with pytest.raises(ImageWriteError, match="not 0, 1 or 2"):
        write_mask_nifti(bad, tmp_path / "bad.nii.gz", vol)
    assert not (tmp_path / "bad.nii.gz").exists()


# ------------------------------------------------------- row 25 (mask part): disk full


def test_disk_full_while_saving_keeps_the_previous_mask(tmp_path, monkeypatch):
    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    labels = LabelMap.empty_like(vol)
    out = tmp_path / "out" / "mask.nii.gz"
    write_mask_nifti(labels, out, vol)
    before = out.read_bytes()

    real_open_write = gz.open_write

    class Full(io.RawIOBase):
        def __init__(self, inner):
            self.inner = inner

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.inner.close()

    monkeypatch.setattr(gz, "open_write", lambda p, c, level=1: Full(real_open_write(p, c)))
    labels.data[1, 1, 1] = 2
    with pytest.raises(DiskFullError, match=r"could not save.*disk full"):
        write_mask_nifti(labels, out, vol)
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["mask.nii.gz"]  # no partial file


def test_verification_failure_leaves_target_untouched(tmp_path, monkeypatch):
    from livgui.imageio import nifti

    vol = read_nifti(save_nifti(tmp_path / "ct.nii.gz", noise_volume((10, 12, 8))))
    labels = LabelMap.empty_like(vol)
    labels.data[3, 3, 3] = 1
    real = nifti.write_nifti_stream

    def corrupting(path, header, data, compress):
        flipped = data.copy()
        flipped[0, 0, 0] ^= 1
        real(path, header, flipped, compress)

    monkeypatch.setattr(nifti, "write_nifti_stream", corrupting)
    with pytest.raises(ImageWriteError, match="re-read voxels differ"):
        write_mask_nifti(labels, tmp_path / "m.nii.gz", vol)
    assert list(tmp_path.glob("*m.nii.gz*")) == []


# ------------------------------- row 31: read-only, non-ASCII and very long source paths


def _digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _record_write_opens(monkeypatch, root: Path) -> list[str]:
    """Record every open of a path under ``root`` in a writing mode (tests run as root)."""
    writes: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    root_s = str(root)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def under_root(file) -> bool:
        return isinstance(file, (str, bytes, os.PathLike)) and os.fsdecode(
            os.path.abspath(file)
        ).startswith(root_s)

    def checked_open(file, mode="r", *args, **kwargs):
        if under_root(file) and any(c in mode for c in "wax+"):
            writes.append(f"open({file!s}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    def checked_os_open(path, flags, *args, **kwargs):
        if under_root(path) and flags & write_flags:
            writes.append(f"os.open({path!s}, {flags:#o})")
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", checked_open)
    monkeypatch.setattr(io, "open", checked_open)
    monkeypatch.setattr(os, "open", checked_os_open)
    return writes


def test_row31_read_only_non_ascii_long_paths_are_read_and_never_written(tmp_path, monkeypatch):
    source = tmp_path / "Patientin Ärztin 肝臓 ü" / ("d" * 120) / ("e" * 120)
    source.mkdir(parents=True)
    ct = save_nifti(source / ("CT_é_" + "x" * 150 + ".nii.gz"), noise_volume((10, 12, 8)))
    ref = save_nifti(source / "Leber_maske_ß.nii.gz", mask_for((10, 12, 8)))
    assert len(str(ct)) > 400
    for p in (ct, ref):
        p.chmod(0o444)
    for folder in (source, source.parent, source.parent.parent):
        folder.chmod(0o555)
    try:
        before = _digest(tmp_path / "Patientin Ärztin 肝臓 ü")
        writes = _record_write_opens(monkeypatch, tmp_path / "Patientin Ärztin 肝臓 ü")

        vol = read_nifti(ct)
        labels = read_nifti_labels(ref, vol)
        out = tmp_path / "Ausgabe 出力" / ("m" * 150 + "_маска.nii.gz")
        digest = write_mask_nifti(labels, out, vol)
        assert digest == sha256_file(out)
        for target in (ct, ref):
            with pytest.raises(ImageWriteError, match="never overwritten"):
                write_mask_nifti(labels, target, vol)

        assert writes == []
        assert _digest(tmp_path / "Patientin Ärztin 肝臓 ü") == before
        np.testing.assert_array_equal(np.asarray(nib.load(str(out)).dataobj), mask_for((10, 12, 8)))
    finally:
        for folder in (source, source.parent, source.parent.parent):
            folder.chmod(0o755)


def test_row31_writing_a_mask_for_a_dicom_like_volume(tmp_path):
    # No NIfTI header behind the volume: affine from the Volume geometry (LPS -> RAS).
    affine = np.diag([0.7, 0.7, 1.6, 1.0])
    affine[:3, 3] = (-180.0, -170.0, -300.0)
    vol = Volume(np.zeros((5, 6, 7), np.int16), Geometry((5, 6, 7), affine))
    labels = LabelMap.empty_like(vol)
    labels.data[1, 2, 3] = 2
    out = tmp_path / "dicom_mask.nii"
    write_mask_nifti(labels, out, vol)
    img = nib.load(str(out))
    assert img.shape == (7, 6, 5)
    assert np.allclose(img.affine, np.diag([-1, -1, 1, 1]) @ affine)
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    back = read_nifti_labels(out, vol)
    assert back.source.warnings == ()
    np.testing.assert_array_equal(back.data, labels.data)


def test_row31_the_write_recorder_does_see_writes(tmp_path, monkeypatch):
    writes = _record_write_opens(monkeypatch, tmp_path)
    with open(tmp_path / "probe.bin", "wb") as fh:
        fh.write(b"x")
    fd = os.open(tmp_path / "probe2.bin", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    with open(tmp_path / "probe.bin", "rb") as fh:
        fh.read()
    assert len(writes) == 2
