"""Would textrnn gain from averaging the recipe's models over seeds? Measured on validation.

    python bench/seed_ensemble.py                      # ag_news_mini, sst2 and bbc-news, seeds 0-4
    python bench/seed_ensemble.py --datasets sst2 --seeds 3

For each dataset: the default recipe fitted once per seed on the leaderboard's splits, then the average of the
first k models' probabilities for k = 3 and k = all, against the mean accuracy of the same k models alone.
Validation accuracy is what an ensemble would be chosen by; test accuracy is printed beside it for the record. An
ensemble costs k times the training and k times the prediction.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from leaderboard import load  # bench/ is the script's own directory, first on sys.path


def accuracy(probabilities: np.ndarray, classes: np.ndarray, labels: np.ndarray) -> float:
    return float((classes[probabilities.argmax(1)] == labels).mean())


def main() -> None:
    from textrnn import TextClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ag_news_mini", "sst2", "bbc-news"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("an ensemble needs at least 2 seeds")
    for name in args.datasets:
        train, validation, test, _, _ = load(name)
        splits = {"validation": validation, "test": test}
        probabilities = {split: [] for split in splits}
        for seed in range(args.seeds):
            model = TextClassifier(seed=seed, progress=False).fit(*train, validation_data=validation)
            for split, (texts, _) in splits.items():
                probabilities[split].append(model.predict_proba(texts))
        classes = np.asarray(model.classes_)
        print(name)
        for split, (_, labels) in splits.items():
            labels = np.asarray(labels)
            alone = [accuracy(p, classes, labels) for p in probabilities[split]]
            for k in sorted({min(3, args.seeds), args.seeds}):
                averaged = accuracy(sum(probabilities[split][:k]), classes, labels)
                print(f"  {split:<10} seeds 0-{k - 1}: alone {statistics.mean(alone[:k]):.4f} ± "
                      f"{statistics.stdev(alone[:k]):.4f}, averaged {averaged:.4f}", flush=True)


if __name__ == "__main__":
    main()
