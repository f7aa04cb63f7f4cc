"""How much IMDB's validation split shares with training that its test split does not: rare names.

    python bench/imdb_name_overlap.py

IMDB's test reviews are of other movies than its training reviews (Maas et al. 2011); the leaderboard's
validation split is a stratified random 10 % of the training reviews, so it shares their movies. A movie shows
in its reviews as rare capitalised words (titles, actors, characters). For each review of a split, this finds
the training reviews that share two or more such words with it (each word in at most 30 of them), and prints how
many reviews have such a match and how often the matched training reviews carry the review's own label: a model
that learns names learns that label. It does so for the leaderboard's two validation splits (random, and
`--validation-rows tail`: the last 10 % of each label by file id) and for the test split, and prints how often
two neighbouring training reviews (by file id) share a rare name, against two reviews drawn at random.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict

from textrnn.data.files import read_labelled

from leaderboard import DATA, load, tail_split  # bench/ is the script's own directory, first on sys.path

RARE = 30  # a "rare" name: in at most this many training reviews
NAME = re.compile(r"\b[A-Z][a-z]{3,}\b")


def names(text: str) -> set[str]:
    return set(NAME.findall(text))


def name_overlap(train: tuple[list, list], texts: list[str], labels: list[str]) -> tuple[float, float]:
    """(share of `texts` with a training review sharing 2+ rare names, share of those training reviews that carry
    the text's label)."""
    train_texts, train_labels = train
    train_names = [names(t) for t in train_texts]
    counts = Counter(w for found in train_names for w in found)
    reviews_with = defaultdict(list)  # rare name -> the training reviews holding it
    for i, found in enumerate(train_names):
        for w in found:
            if counts[w] <= RARE:
                reviews_with[w].append(i)
    same_label = []
    for text, label in zip(texts, labels):
        shared = Counter(i for w in names(text) for i in reviews_with.get(w, ()))
        matches = [i for i, n in shared.items() if n >= 2]
        if matches:
            same_label.append(sum(train_labels[i] == label for i in matches) / len(matches))
    return len(same_label) / len(texts), sum(same_label) / len(same_label)


def report(split_name: str, train: tuple[list, list], texts: list[str], labels: list[str]) -> None:
    matched, same = name_overlap(train, texts, labels)
    print(f"{split_name:<42} {matched:6.1%} of reviews share 2+ rare names with a training review; "
          f"those training reviews carry the same label {same:6.1%} of the time")


def main() -> None:
    train, validation, test, _, where = load("imdb")
    report(f"validation ({where})", train, *validation)
    report("test", train, *test)
    # load() shuffles IMDB's training rows; the file's own order keeps a movie's reviews of a label together
    in_file_order = read_labelled(DATA / "imdb" / "train.csv.gz", "label", ["text"], fmt="csv")
    rest, held = tail_split(in_file_order, 0.1)  # what --validation-rows tail holds out
    report("validation (last 10% of each label)", (rest.columns["text"], rest.labels),
           held.columns["text"], held.labels)

    found = [names(t) for t in in_file_order.columns["text"]]
    counts = Counter(w for f in found for w in f)
    rare = [{w for w in f if counts[w] <= RARE} for f in found]
    half = len(rare) // 2  # the file holds the negative reviews by file id, then the positive ones
    neighbours = sum(bool(rare[i] & rare[i + 1]) for i in range(half - 1)) / (half - 1)
    rng = random.Random(0)
    pairs = [(rng.randrange(len(rare)), rng.randrange(len(rare))) for _ in range(20_000)]
    strangers = sum(bool(rare[i] & rare[j]) for i, j in pairs) / len(pairs)
    print(f"training reviews next to each other by file id share a rare name {neighbours:.1%} of the time; "
          f"two drawn at random {strangers:.2%}")


if __name__ == "__main__":
    main()
