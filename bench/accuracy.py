"""Does the fast path learn as well as the plain one? Validation accuracy over several seeds.

    python bench/accuracy.py                      # 4 lesson models x 5 seeds x 3 epochs, about 12 minutes
    python bench/accuracy.py --only lesson-bilstm --seeds 3 --epochs 2

Data: ../shared/data/ag_news_mini (6,000 training / 1,600 validation rows), vocabulary as in the lesson. Each
lesson model is trained with the same seeds and epochs two ways:

* plain: rows shuffled every epoch into padded batches, torch.optim.Adam (dense) — what a DataLoader and the
  stock optimizer do;
* fast:  textrnn's defaults — length-bucketed batches, FastAdam (row-wise embedding updates);
* fast-bf16 (with --paths): the same under bfloat16 autocast.

Both use textrnn's exact masking, so the comparison isolates batching and optimizer. Prints the mean and
spread of the final validation accuracy and the fast - plain difference in points.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from textrnn import TextClassifier, load_ag_news  # noqa: E402
from textrnn.lesson.presets import PRESETS  # noqa: E402

PATHS = {"plain": dict(batching="shuffle", optimizer="adam"), "fast": dict(batching="bucket", optimizer="auto"),
         "fast-bf16": dict(batching="bucket", optimizer="auto", precision="bf16")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", help="only this lesson model (repeatable)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--paths", default="plain,fast", help="which of plain, fast, fast-bf16 (default: %(default)s)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    data = load_ag_news(ROOT.parent / "shared" / "data" / "ag_news_mini")
    results = []
    print(f"{'model':<22}{'path':<7}{'mean acc':>10}{'stdev':>8}{'min':>8}{'max':>8}{'s/run':>8}   per seed")
    for name in args.only or list(PRESETS):
        preset = PRESETS[name]
        mode = preset.text_mode
        means = {}
        for path in args.paths.split(","):
            how = PATHS[path]
            accs, seconds = [], []
            for seed in range(args.seeds):
                clf = TextClassifier(**dict(preset.params, epochs=args.epochs), adapt_limit=preset.adapt_limit,
                                     seed=seed, progress=False, **how)
                start = time.perf_counter()
                clf.fit(data.train.texts(mode), data.train.labels, classes=data.classes,
                        adapt_texts=data.train.columns["title"],
                        validation_data=(data.test.texts(mode), data.test.labels))
                seconds.append(time.perf_counter() - start)
                accs.append(clf.history_[-1].val_accuracy)
            means[path] = statistics.mean(accs)
            results.append({"model": name, "path": path, "accuracies": accs, "seconds": seconds})
            print(f"{name:<22}{path:<7}{means[path]:>10.4f}{statistics.stdev(accs) if len(accs) > 1 else 0:>8.4f}"
                  f"{min(accs):>8.4f}{max(accs):>8.4f}{statistics.mean(seconds):>8.1f}   "
                  + " ".join(f"{a:.4f}" for a in accs), flush=True)
        for path in means:
            if path != "plain" and "plain" in means:
                print(f"{'':<22}{path} - plain: {100 * (means[path] - means['plain']):+.2f} points", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": args.seeds, "epochs": args.epochs, "results": results},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
