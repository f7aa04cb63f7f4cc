"""Start-up: seconds from launching `textrnn train` to the end of its first training step, and to its end.

    python bench/startup.py                # 5 runs of lesson-simple-titles, 2 epochs, on ag_news_mini
    python bench/startup.py --runs 3 -- --preset lesson-bilstm
    python bench/startup.py --against ../old   # and another checkout of textrnn (git worktree add ../old REV),
                                               # its runs interleaved with this one's

Each run is a fresh `python -m textrnn train ...` process; a small driver marks the first optimizer step's end
(it wraps `Loop.call("on_step_end")` once, before the command runs) and prints the wall-clock time, which the
parent subtracts from the moment it launched the process. The median of the runs is reported, with the whole
run's time beside it. With `--against DIR`, the same runs of the textrnn in DIR/src (an older revision, say)
alternate with this checkout's, so that both see the same machine, and their ratio is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news_mini"
DRIVER = """
import sys, time
from textrnn.training import loop
original = loop.Loop.call
def call(self, hook, *args):
    if hook == "on_step_end" and not getattr(loop, "_first_step_seen", False):
        loop._first_step_seen = True
        print(f"FIRST-STEP {time.time():.6f}", file=sys.stderr, flush=True)
    return original(self, hook, *args)
loop.Loop.call = call
from textrnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def one_run(flags: list[str], out: Path, src: Path) -> tuple[float, float]:
    command = [sys.executable, "-c", DRIVER, "-q", "train", "--data-dir", str(DATA), "--epochs", "2",
               "--no-checkpoints", "--out", str(out), *flags]
    env = {**os.environ, "PYTHONPATH": str(src)}  # this textrnn, ahead of any installed one
    started = time.time()
    run = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    ended = time.time()
    first = next(float(line.split()[1]) for line in run.stderr.splitlines() if line.startswith("FIRST-STEP"))
    return first - started, ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another textrnn checkout, timed alternately with this one")
    parser.add_argument("flags", nargs="*", help="flags for `textrnn train` (default: --preset lesson-simple-titles)")
    args = parser.parse_args()
    flags = args.flags or ["--preset", "lesson-simple-titles"]
    checkouts = {"this checkout": ROOT}
    if args.against:
        checkouts[f"{args.against}"] = args.against.resolve()
    firsts = {name: [] for name in checkouts}
    wholes = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, root in checkouts.items():
                first, whole = one_run(flags, Path(tmp) / f"run{i}", root / "src")
                firsts[name].append(first)
                wholes[name].append(whole)
                print(f"  {name}, run {i + 1}: first step after {first:.2f} s, whole run {whole:.2f} s",
                      file=sys.stderr)
    print(f"textrnn train {' '.join(flags)} --epochs 2 on ag_news_mini, median of {args.runs} fresh processes:")
    for name in checkouts:
        print(f"  {name}: to the end of the first training step {statistics.median(firsts[name]):.2f} s, "
              f"the whole run {statistics.median(wholes[name]):.2f} s")
    if args.against:
        this, other = (statistics.median(firsts[name]) for name in checkouts)
        print(f"  first step: this checkout takes {this / other:.2f}x the time of {args.against}")


if __name__ == "__main__":
    main()
