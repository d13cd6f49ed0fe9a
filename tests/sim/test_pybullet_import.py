"""pybullet's C extension prints "pybullet build time: ..." to stderr when imported; the backend
imports it without that line, which used to land in the middle of ``bremen bench``'s table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="pybullet (sim extra) not installed")

ROOT = Path(__file__).resolve().parents[2]


def test_importing_pybullet_through_the_backend_prints_nothing():
    code = (
        "from sim.backends.pybullet_backend import import_pybullet\n"
        "pb = import_pybullet()\n"
        "print(pb.__name__, pb.DIRECT)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "pybullet 2\n", "")
