"""benchmarks/gpu_all.py runs with torch + numpy + safetensors alone (tiny sizes, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = "scipy platformdirs nibabel pydicom PySide6 pyqtgraph psutil PIL".split()


@pytest.mark.slow
def test_gpu_script_runs_without_optional_packages(tmp_path):
    code = (
        "import sys, runpy\n"
        f"for m in {BLOCK!r}: sys.modules[m] = None\n"
        "sys.argv = ['gpu_all.py', '--tiny', '--device', 'cpu', '--only', 'cascade']\n"
        "runpy.run_path('benchmarks/gpu_all.py', run_name='__main__')\n"
    )
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_all.json").read_text())
    assert report["scipy_available"] is False
    for label in ("cpu_sized", "study_sized"):
        assert report["cascade"][label]["total_s"] > 0
        assert report["cascade"][label]["liver_fraction"] == 1.0
