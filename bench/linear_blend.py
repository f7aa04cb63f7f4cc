"""Would textrnn gain from averaging its probabilities with a linear model's? Measured on validation.

    python bench/linear_blend.py                       # ag_news_mini, sst2 and bbc-news, 3 seeds
    python bench/linear_blend.py --datasets sst2 --seeds 5 --test
    python bench/linear_blend.py --model nbsvm --datasets imdb --seeds 1 --test

For each dataset: the linear model (scikit-learn's tf-idf logistic regression, or with --model nbsvm NBSVM's
naive-Bayes-weighted n-grams) chosen on the validation split as the leaderboard's --linear (--nbsvm) arm chooses
it, and the default recipe's network once per seed (without its linear part, `linear_part=None`: the recipe's
part is this script's --model nbsvm rule, built into textrnn); the blend's log-probabilities are
w * the regression's + (1 - w) * textrnn's, w from 0 to 1 in tenths. A blend whose w is chosen on the validation
split scores that split at least as well as textrnn alone (w = 0 is among the choices), so its own validation
score says nothing: the script chooses w on one random half of the validation split and scores it on the other,
then the other way round (cross-fitting), and prints that beside textrnn's own validation accuracy. With --test it
also prints test accuracy, for the record; nothing is chosen by it.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from leaderboard import LINEAR_PEERS, best_linear, load  # bench/ is the script's own directory, first on sys.path

WEIGHTS = np.linspace(0.0, 1.0, 11)


def blend_accuracy(w: float, linear: np.ndarray, network: np.ndarray, truth: np.ndarray, classes: np.ndarray,
                   rows=slice(None)) -> float:
    return float((classes[(w * linear[rows] + (1 - w) * network[rows]).argmax(1)] == truth[rows]).mean())


def chosen_weight(linear: np.ndarray, network: np.ndarray, truth: np.ndarray, classes: np.ndarray,
                  rows=slice(None)) -> float:
    """The w that scores `rows` best (the smaller on ties)."""
    return max(WEIGHTS, key=lambda w: (blend_accuracy(w, linear, network, truth, classes, rows), -w))


def cross_fitted(linear: np.ndarray, network: np.ndarray, truth: np.ndarray, classes: np.ndarray) -> float:
    """Validation accuracy of the blend, each half of the split scored with the w chosen on the other half."""
    half = np.random.default_rng(0).random(len(truth)) < 0.5
    correct = 0.0
    for choose, score in ((half, ~half), (~half, half)):
        w = chosen_weight(linear, network, truth, classes, choose)
        correct += blend_accuracy(w, linear, network, truth, classes, score) * score.sum()
    return correct / len(truth)


def main() -> None:
    from textrnn import TextClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ag_news_mini", "sst2", "bbc-news"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--model", choices=list(LINEAR_PEERS), default="linear", help="the linear model: the "
                        "leaderboard's tf-idf logistic regression (--linear) or NBSVM (--nbsvm)")
    parser.add_argument("--test", action="store_true", help="also print test accuracy (chooses nothing)")
    args = parser.parse_args()
    for name in args.datasets:
        (train_x, train_y), (val_x, val_y), (test_x, test_y), _, _ = load(name)
        val_truth, test_truth = np.array(val_y), np.array(test_y)
        setting, regression, regression_val = best_linear((train_x, train_y), (val_x, val_y), args.model)
        linear_val, linear_test = regression.predict_log_proba(val_x), regression.predict_log_proba(test_x)
        rows, chosen = [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            # the network alone: the recipe's own linear part (linear_part="auto") is this script's rule, built in
            clf = TextClassifier(seed=seed, linear_part=None, progress=False).fit(train_x, train_y,
                                                                                 validation_data=(val_x, val_y))
            classes = np.array(clf.classes_)
            assert list(classes) == list(regression.classes_)
            network_val = np.log(clf.predict_proba(val_x) + 1e-12)
            network_test = np.log(clf.predict_proba(test_x) + 1e-12)
            row = {"textrnn": blend_accuracy(0.0, linear_val, network_val, val_truth, classes),
                   "blend (cross-fitted)": cross_fitted(linear_val, network_val, val_truth, classes),
                   "blend w=0.5": blend_accuracy(0.5, linear_val, network_val, val_truth, classes)}
            if args.test:
                w = chosen_weight(linear_val, network_val, val_truth, classes)
                row["test: textrnn"] = blend_accuracy(0.0, linear_test, network_test, test_truth, classes)
                row["test: blend, w chosen on validation"] = blend_accuracy(w, linear_test, network_test,
                                                                            test_truth, classes)
                chosen.append(round(float(w), 1))
            rows.append(row)
        title, _, grid = LINEAR_PEERS[args.model]
        print(f"{name}: {title} {dict(zip(grid, setting))}, validation "
              f"{regression_val:.4f}" + (f", test {regression.score(test_x, test_y):.4f}"
                                                         if args.test else ""))
        for key in rows[0]:
            values = [row[key] for row in rows if key in row]
            print(f"  {key:<40} {statistics.mean(values):.4f}  ({', '.join(f'{v:.4f}' for v in values)})")
        if chosen:
            print(f"  w chosen on all of validation, by seed: {chosen}")


if __name__ == "__main__":
    main()
