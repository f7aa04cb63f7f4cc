"""Does the same seed give the same weights every time? Each combination of optimizer, batching mode and cell is
trained briefly in one process, and that process is started again and again; every run's weights (as the
bytes of model.safetensors) must be the same as the first run's.

    python bench/determinism.py                  # 20 processes x 36 combinations, about 6 minutes on 2 cores
    python bench/determinism.py --repeats 3 --only fast-adam/bucket/lstm

Fresh processes, not repeats inside one: a race between threads, or anything tied to where memory lands,
shows up between processes. Prints, per combination, how many distinct outcomes the runs gave (1 is right).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ag_news_mini"
OPTIMIZERS = ("fast-adam", "lazy-adam", "adam")
BATCHING = ("bucket", "shuffle", "sequential")
CELLS = ("rnn", "lstm", "gru")
COMBINATIONS = [f"{o}/{b}/{c}" for o, b, c in itertools.product(OPTIMIZERS, BATCHING, CELLS)] + [
    "fast-adam/bucket/lstm-bf16"]


def train_all(names: list[str], rows: int) -> dict[str, str]:
    """Run in a worker process: train each combination once; SHA-256 of each model.safetensors."""
    import tempfile

    from textrnn import TextClassifier, load_ag_news

    data = load_ag_news(DATA).train.take(rows)
    texts = data.texts("title+description")
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            optimizer, batching, cell = name.split("/")
            cell, _, precision = cell.partition("-")
            clf = TextClassifier(cell=cell, embedding_dim=32, hidden_size=16, max_tokens=5000, epochs=2,
                                 batch_size=16, dropout=0.1, optimizer=optimizer, batching=batching,
                                 precision=precision or "fp32", seed=7, progress=False,
                                 ngram_buckets=4096)  # the recipe's bag of n-grams, in a table of test size
            clf.fit(texts, data.labels, classes=("World", "Sports", "Business", "Sci/Tech"))
            path = clf.save_pretrained(Path(tmp) / name.replace("/", "_"))
            digests[name] = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    return digests


def measure(names: list[str], repeats: int, rows: int) -> dict[str, collections.Counter]:
    outcomes = {name: collections.Counter() for name in names}
    for i in range(repeats):
        result = subprocess.run([sys.executable, __file__, "--worker", "--rows", str(rows),
                                 *itertools.chain.from_iterable(("--only", n) for n in names)],
                                capture_output=True, text=True, check=True)
        for name, digest in json.loads(result.stdout).items():
            outcomes[name][digest] += 1
        print(f"\rprocess {i + 1}/{repeats}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="processes to start (default %(default)s)")
    parser.add_argument("--rows", type=int, default=600, help="training rows of ag_news_mini (default %(default)s)")
    parser.add_argument("--only", action="append", help="optimizer/batching/cell (repeatable)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.only or COMBINATIONS
    if args.worker:
        print(json.dumps(train_all(names, args.rows)))
        return
    outcomes = measure(names, args.repeats, args.rows)
    width = max(map(len, names))
    print(f"{'optimizer/batching/cell':<{width}}  runs  outcomes")
    for name, counts in outcomes.items():
        print(f"{name:<{width}}  {sum(counts.values()):>4}  {len(counts)}"
              + (f"   ({', '.join(str(c) for c in counts.values())})" if len(counts) > 1 else ""))
    bad = [n for n, c in outcomes.items() if len(c) > 1]
    print(f"\n{len(names) - len(bad)} of {len(names)} combinations gave one outcome in every run")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
