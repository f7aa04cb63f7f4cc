"""How should a classifier weigh its linear n-gram part? Rules for the weight, compared on validation.

    python bench/linear_weight.py                      # ag_news_mini, sst2 and bbc-news, seeds 0-5
    python bench/linear_weight.py --datasets sst2 --seeds 2 --test
    python bench/linear_weight.py --refit             # also: the kept part fitted again with the chosen half
    python bench/linear_weight.py --refit --set ngrams=0   # the same with another network beside the part
    python bench/linear_weight.py --refit --cache /tmp/nets --part "TOKEN_PATTERN=\S+"   # another part, the same nets

For each dataset and seed: the recipe's network alone (`linear_part=None`) and the recipe's linear part
(`textrnn.models.ngram_linear.NgramLinearModel`, fitted on the leaderboard's training part as `fit` fits it), both
scored on the validation split; then each rule chooses the part's weight in the average, w among 0, 0.1, ..., 1:

- accuracy: the rule before 6 December 2026's last session: the w of the best validation accuracy, kept only where
  the average's accuracy cross-fitted over the split's two halves beats the network alone;
- log-loss: the w of the lowest validation log-loss;
- log-loss at the best temperature: the same, each average's scores divided by the temperature that makes its
  log-loss lowest (`ngram_linear.choose_weight`, the recipe's rule since).

A rule is judged as it would be used, on texts it did not choose on: it chooses on one random half of the
validation split and the other half is scored (accuracy, and the log-loss of the average's probabilities as
predictions give them, untempered), then the other way round; 20 random halvings, averaged. With --test it also
prints the test accuracy of the w each rule chose on the whole split, for the record; nothing is chosen by it.

With --refit, one more row: the recipe's rule with the part it keeps fitted again on the training texts and the
half the weight was chosen on (what `fit` does with the whole validation split since 6 December 2026), scored on
the other half; and the part alone both ways. It fits the part twice per halving (40 fits a dataset).

With --set NAME=VALUE (as the leaderboard's), the network is the recipe's with that change: a change to the network
is then judged by what the average of it and the part does on held-out halves, which the leaderboard cannot show
(there the part is fitted again on the whole validation split).

With --part NAME=VALUE, the part is the recipe's with that constant of `textrnn.models.ngram_linear` changed
(TOKEN_PATTERN, NGRAM_RANGE, C, ALPHA; the value read as --set reads it), against the same networks. With --cache
DIR the networks' validation and test log-probabilities are kept in DIR and read back by a later run with the same
dataset, seed and --set, so that a change to the part is judged in the seconds its own fits take.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
from pathlib import Path

import numpy as np

from leaderboard import load, parse_settings  # bench/ is the script's own directory, first on sys.path

WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 1)
HALVINGS = 20


def averaged(network: np.ndarray, linear: np.ndarray, weight: float) -> np.ndarray:
    from textrnn.models.ngram_linear import average

    return average(network, linear, weight)


def accuracy(network, linear, y, weight, rows) -> float:
    from textrnn.models.ngram_linear import _accuracy

    return _accuracy(weight, network, linear, y, rows)


def log_loss(network, linear, y, weight, rows) -> float:
    log_proba = averaged(network[rows], linear[rows], weight)
    return float(-log_proba[np.arange(len(log_proba)), y[rows]].mean())


def by_accuracy(network, linear, y, rows) -> float:
    rows = np.arange(len(y))[rows]
    best = lambda chosen: max(WEIGHTS, key=lambda w: (accuracy(network, linear, y, w, chosen), -w))  # noqa: E731
    half = np.random.default_rng(0).random(len(rows)) < 0.5
    one, other = rows[half], rows[~half]
    cross_fitted = (accuracy(network, linear, y, best(one), other) * len(other) +
                    accuracy(network, linear, y, best(other), one) * len(one)) / len(rows)
    return best(rows) if cross_fitted > accuracy(network, linear, y, 0.0, rows) else 0.0


def by_log_loss(network, linear, y, rows) -> float:
    return min(WEIGHTS, key=lambda w: (log_loss(network, linear, y, w, rows), w))


def by_tempered_log_loss(network, linear, y, rows) -> float:
    from textrnn.models.ngram_linear import _best_weight

    return _best_weight(network, linear, y, rows)


RULES = {"network alone": lambda network, linear, y, rows: 0.0, "accuracy (the rule before)": by_accuracy,
         "log-loss": by_log_loss, "log-loss at the best temperature (the recipe's)": by_tempered_log_loss}


def halvings(rows: int):
    """HALVINGS random halvings of `rows` validation texts, each both ways: (rows chosen on, rows scored) pairs,
    the same on every call."""
    for k in range(HALVINGS):
        half = np.random.default_rng(100 + k).random(rows) < 0.5
        one, other = np.flatnonzero(half), np.flatnonzero(~half)
        yield (one, other), (other, one)


def judged(rule, network, linear, y) -> tuple[float, float]:
    """(accuracy, log-loss) of the rule on held-out halves of the validation split, over HALVINGS halvings."""
    accuracies, losses = [], []
    for both_ways in halvings(len(y)):
        right = loss = 0.0
        for choose, score in both_ways:
            weight = rule(network, linear, y, choose)
            right += accuracy(network, linear, y, weight, score) * len(score)
            loss += log_loss(network, linear, y, weight, score) * len(score)
        accuracies.append(right / len(y))
        losses.append(loss / len(y))
    return statistics.mean(accuracies), statistics.mean(losses)


def judged_refit(network, linear, y, refits) -> tuple[float, float]:
    """`judged` for the recipe's rule with the part fitted again on the chosen half: `refits` holds, per halving
    and direction, the scored rows and the log-probabilities the refitted part gives them."""
    from textrnn.models.ngram_linear import _best_weight

    right = loss = 0.0
    for choose, score, refitted in refits:
        weight = _best_weight(network, linear, y, choose)
        right += accuracy(network[score], refitted, y[score], weight, slice(None)) * len(score)
        loss += log_loss(network[score], refitted, y[score], weight, slice(None)) * len(score)
    return right / (len(y) * HALVINGS), loss / (len(y) * HALVINGS)


def refitted_parts(train_x, train_ids, val_x, val_ids, classes: int) -> list:
    """For each halving of `judged` and each direction: (chosen rows, scored rows, the log-probabilities of the
    scored rows under a part fitted on the training texts and the chosen rows)."""
    from textrnn.models.ngram_linear import NgramLinearModel

    out = []
    for both_ways in halvings(len(val_ids)):
        for choose, score in both_ways:
            part = NgramLinearModel.fit(list(train_x) + [val_x[i] for i in choose],
                                        np.concatenate([train_ids, val_ids[choose]]), classes)
            out.append((choose, score, part.log_proba([val_x[i] for i in score])))
    return out


def network_log_proba(settings: dict, data, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """The validation and test log-probabilities of the recipe's network fitted with `settings` (read from the
    cache where an earlier run kept them)."""
    from textrnn import TextClassifier

    (train_x, train_y), (val_x, val_y), (test_x, _), name = data
    key = hashlib.sha256(json.dumps([name, settings], sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache / f"{name}-{settings['seed']}-{key}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as kept:
            return kept["validation"], kept["test"]
    clf = TextClassifier(**settings).fit(train_x, train_y, validation_data=(val_x, val_y))
    assert list(clf.classes_) == sorted(set(train_y))
    validation, test = np.log(clf.predict_proba(val_x) + 1e-12), np.log(clf.predict_proba(test_x) + 1e-12)
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, validation=validation, test=test)
    return validation, test


def main() -> None:
    from textrnn.models import ngram_linear
    from textrnn.models.ngram_linear import NgramLinearModel

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ag_news_mini", "sst2", "bbc-news"])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="also print test accuracy (chooses nothing)")
    parser.add_argument("--refit", action="store_true", help="also judge the part fitted again with the chosen half")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="the network with this TextClassifier setting changed (repeatable)")
    parser.add_argument("--part", action="append", default=[], metavar="NAME=VALUE",
                        help="the part with this constant of textrnn.models.ngram_linear changed (repeatable)")
    parser.add_argument("--cache", type=Path, help="keep the networks' log-probabilities here, and reuse them")
    args = parser.parse_args()
    change = parse_settings(args.set)
    if change:
        print(f"the network: the recipe's with {change}")
    for constant, value in parse_settings(args.part).items():
        if constant not in ("TOKEN_PATTERN", "NGRAM_RANGE", "C", "ALPHA"):
            parser.error(f"--part changes TOKEN_PATTERN, NGRAM_RANGE, C or ALPHA, not {constant}")
        setattr(ngram_linear, constant, tuple(value) if isinstance(value, list) else value)
        print(f"the part: the recipe's with {constant} = {getattr(ngram_linear, constant)!r}")
    for name in args.datasets:
        (train_x, train_y), (val_x, val_y), (test_x, test_y), _, _ = load(name)
        classes = sorted(set(train_y))  # TextClassifier's class order
        ids = lambda labels: np.array([classes.index(label) for label in labels])  # noqa: E731
        train_ids, val_ids, test_ids = ids(train_y), ids(val_y), ids(test_y)
        part = NgramLinearModel.fit(train_x, train_ids, len(classes))
        linear_val, linear_test = part.log_proba(val_x), part.log_proba(test_x)
        refits = refitted_parts(train_x, train_ids, val_x, val_ids, len(classes)) if args.refit else []
        results = {rule: [] for rule in RULES}
        refit_results = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            settings = {**change, "seed": seed, "linear_part": None, "progress": False}
            network_val, network_test = network_log_proba(
                settings, ((train_x, train_y), (val_x, val_y), (test_x, test_y), name), args.cache)
            for rule_name, rule in RULES.items():
                weight = rule(network_val, linear_val, val_ids, slice(None))
                test = accuracy(network_test, linear_test, test_ids, weight, slice(None))
                results[rule_name].append((*judged(rule, network_val, linear_val, val_ids), weight, test))
            if refits:
                refit_results.append(judged_refit(network_val, linear_val, val_ids, refits))
        print(f"{name}: the part alone {accuracy(linear_val, linear_val, val_ids, 0.0, slice(None)):.4f} on "
              f"validation; seeds {args.first_seed}-{args.first_seed + args.seeds - 1}; validation judged on "
              "held-out halves")
        print(f"  {'rule':<50} {'accuracy':>8} {'log-loss':>8}  {'test' if args.test else '':>6}  weights chosen")
        for rule_name, rows in results.items():
            rows = np.array(rows)
            test = f"{rows[:, 3].mean():.4f}" if args.test else ""
            print(f"  {rule_name:<50} {rows[:, 0].mean():8.4f} {rows[:, 1].mean():8.4f}  {test:>6}  "
                  f"{', '.join(f'{w:g}' for w in rows[:, 2])}")
        if refits:
            rows = np.array(refit_results)
            label = "the recipe's rule, the part fitted again"
            print(f"  {label:<50} {rows[:, 0].mean():8.4f} {rows[:, 1].mean():8.4f}")
            alone = [(accuracy(linear_val[score], linear_val[score], val_ids[score], 0.0, slice(None)),
                      accuracy(refitted, refitted, val_ids[score], 0.0, slice(None))) for _, score, refitted in refits]
            print(f"  the part alone on the scored halves: {np.mean([a for a, _ in alone]):.4f} fitted on the training "
                  f"texts, {np.mean([b for _, b in alone]):.4f} fitted again with the chosen half")


if __name__ == "__main__":
    main()
