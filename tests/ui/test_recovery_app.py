"""Crash recovery with the real app: SIGKILL a child painting in the window, kill the
next one during recovery, and a third recovers the last autosaved mask (RELIABILITY 27)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_phantom

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")
nib = pytest.importorskip("nibabel")


def _start(tmp_path, *args):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "QT_QPA_PLATFORM": "offscreen",
        "LIVGUI_RECOVERY_DIR": str(tmp_path / "recovery"),
        "LIVGUI_MODELS_DIR": str(tmp_path / "models"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ui.app_child", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait(progress: Path, word: str, child, timeout: float = 120) -> str:
    """The first progress line starting with ``word`` (polling the child's file)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if progress.exists():
            for line in progress.read_text().splitlines():
                if line.startswith(word):
                    return line
        if child.poll() is not None:
            raise AssertionError(f"child exited early: {child.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"child never wrote {word}")


def _kill(child) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL


def test_kill_while_painting_then_during_recovery_then_recover(tmp_path):
    vol, _lab = make_phantom((12, 40, 40))
    ct = tmp_path / "ct.nii.gz"
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(vol.data, (2, 1, 0)).copy(), affine), ct)
    settings = str(tmp_path / "settings.ini")
    progress = tmp_path / "p1.txt"
    child = _start(tmp_path, "paint", str(ct), settings, str(progress), "5")
    try:
        ready = _wait(progress, "READY", child)
    finally:
        _kill(child)
    _word, steps, autosaved, in_memory = ready.split()
    assert steps == "5" and autosaved == in_memory
    journals = sorted((tmp_path / "recovery").glob("*/journal-*.lgj"))
    assert len(journals) == 1
    # second start: finds it, starts recovering, killed
    progress2 = tmp_path / "p2.txt"
    child = _start(tmp_path, "recover", "-", settings, str(progress2))
    try:
        _wait(progress2, "RECOVERING", child)
    finally:
        _kill(child)
    assert journals[0].exists()  # an unclaimed recovery file is never destroyed
    # third start: recovers the last autosaved mask
    progress3 = tmp_path / "p3.txt"
    child = _start(tmp_path, "recover", "-", settings, str(progress3))
    try:
        recovered = _wait(progress3, "RECOVERED", child)
    finally:
        _kill(child)
    assert recovered.split()[1] == autosaved
    assert journals[0].exists()  # still there until the recovered edits are saved
