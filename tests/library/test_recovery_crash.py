"""Crash tests that really kill: SIGKILL a child that edits with autosave, or that saves
atomically, then recover (RELIABILITY rows 25-27)."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from livgui.core.atomicio import DiskFullError, atomic_write, sha256_file
from livgui.core.editing import BrushOptions, History, PlanePoint, brush, mask_sha256
from livgui.library.recovery import discard, find_recoverable, recover
from tests.library import crash_child

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")


def start(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.library.crash_child", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(
    progress: Path, word: str, child: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if progress.exists() and word in progress.read_text():
            return
        if child.poll() is not None:
            raise AssertionError(f"child exited early: {child.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.02)
    raise AssertionError(f"child never wrote {word}")


def kill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL


def last_checkpoint(progress: Path) -> int:
    steps = [
        int(line.split()[1])
        for line in progress.read_text().splitlines()
        if line.startswith("CKPT")
    ]
    return steps[-1]


def test_kill_while_editing_then_recover_the_last_checkpointed_state(tmp_path: Path) -> None:
    rng = random.Random(7)
    for round_ in range(3):
        root, seed = tmp_path / f"r{round_}", 11 + round_
        progress = tmp_path / f"progress{round_}.txt"
        child = start("edit", str(root), "case-A", str(seed), str(progress))
        wait_for(progress, "CKPT", child)
        time.sleep(rng.uniform(0.05, 0.8))  # a random point in the edit stream
        kill(child)
        acknowledged = last_checkpoint(progress)
        (info,) = find_recoverable(root, include_empty=True)
        assert info.case_id == "case-A"
        assert info.checkpoint_steps >= acknowledged and info.steps >= info.checkpoint_steps
        expected = crash_child.expected_hashes(crash_child.initial_labels(seed), seed, info.steps)
        recovered = recover(info)
        assert mask_sha256(recovered) == info.sha256 == expected[info.steps]


def test_second_kill_during_recovery_loses_nothing(tmp_path: Path) -> None:
    root, seed = tmp_path / "root", 5
    progress = tmp_path / "p0.txt"
    child = start("edit", str(root), "case-B", str(seed), str(progress))
    wait_for(progress, "CKPT", child)
    time.sleep(0.3)
    kill(child)
    (first,) = find_recoverable(root)
    first_bytes = first.path.read_bytes()
    rng = random.Random(3)
    for k in range(2):  # crash again while recovering / right after recovering
        p = tmp_path / f"p{k + 1}.txt"
        child = start("recover", str(root), "case-B", str(seed), str(p), first.session)
        if k == 0:
            time.sleep(rng.uniform(0.0, 0.3))  # possibly before recovery finished
        else:
            wait_for(p, "CKPT", child)
        kill(child)
        infos = {i.session: i for i in find_recoverable(root)}
        assert first.session in infos  # the unclaimed journal is still offered ...
        assert first.path.read_bytes() == first_bytes  # ... byte for byte
        assert infos[first.session].sha256 == first.sha256
    # the user finally claims it: the recovered mask is the first crash's state
    labels = recover(infos[first.session])
    assert mask_sha256(labels) == first.sha256
    discard(infos[first.session])
    assert first.session not in {i.session for i in find_recoverable(root)}


@pytest.mark.parametrize(("mode", "expect_new"), [("save-before", False), ("save-after", True)])
def test_kill_mid_save_leaves_complete_old_or_new_file(
    tmp_path: Path, mode: str, expect_new: bool
) -> None:
    target, progress = tmp_path / "mask.bin", tmp_path / "p.txt"
    target.write_bytes(b"old mask")
    child = start(mode, str(target), str(progress))
    wait_for(progress, "RENAME", child)
    kill(child)
    data = target.read_bytes()
    assert data == (bytes([1]) * (1 << 20) if expect_new else b"old mask")


def test_kill_at_random_during_repeated_saves_never_leaves_a_partial_target(tmp_path: Path) -> None:
    target, progress = tmp_path / "mask.bin", tmp_path / "p.txt"
    target.write_bytes(bytes([1]) * (1 << 20))
    rng = random.Random(11)
    for _ in range(3):
        child = start("save-loop", str(target), str(progress))
        wait_for(progress, "SAVING", child)
        time.sleep(rng.uniform(0.0, 0.3))
        kill(child)
        data = target.read_bytes()
        assert data in (bytes([1]) * (1 << 20), bytes([2]) * (1 << 20))


def test_disk_full_on_save_keeps_previous_file_and_edits(tmp_path: Path) -> None:
    target = tmp_path / "final.nii.gz"
    target.write_bytes(b"previous complete mask")
    before = sha256_file(target)
    labels = np.zeros((4, 16, 16), np.uint8)
    hist = History(labels)
    hist.commit("Brush", brush(labels, _geom(), PlanePoint("axial", 1, 8, 8), BrushOptions(5.0)))
    state = labels.copy()

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match="disk full") as err:
        atomic_write(target, writer)
    assert str(target) in str(err.value)
    assert sha256_file(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["final.nii.gz"]  # no partial file left
    assert np.array_equal(labels, state) and hist.can_undo
    hist.undo()
    assert not labels.any()


def _geom():  # type: ignore[no-untyped-def]
    from livgui.core import Geometry

    return Geometry.from_spacing((4, 16, 16), (2.0, 1.0, 1.0))
