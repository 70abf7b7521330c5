"""Atomic writes: the target is always the complete old or new file."""

from __future__ import annotations

from livgui.core.atomicio import atomic_write_bytes


def test_atomic_write_accepts_names_near_the_filesystem_limit(tmp_path):
    target = tmp_path / ("é" * 60 + "x" * 120 + ".nii.gz")  # 255 bytes in UTF-8
    assert len(target.name.encode()) <= 255
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
