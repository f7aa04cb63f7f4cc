"""The same seed gives the same weights, byte for byte, in every fresh process (bench/determinism.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "determinism.py"


def _determinism(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=1800)


def test_the_fast_path_gives_one_outcome_in_every_process():
    # the default path for each kind of cell, and the two other optimizers; the 28 of them under -m slow
    only = ["fast-adam/bucket/rnn", "fast-adam/bucket/lstm", "lazy-adam/shuffle/gru", "adam/sequential/lstm"]
    result = _determinism("--repeats", "2", "--rows", "300", *[a for n in only for a in ("--only", n)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 combinations gave one outcome in every run" in result.stdout


@pytest.mark.slow
def test_every_optimizer_batching_and_cell_gives_one_outcome_in_20_processes():
    result = _determinism("--repeats", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "28 of 28 combinations gave one outcome in every run" in result.stdout
