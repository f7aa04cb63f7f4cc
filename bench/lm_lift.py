"""What pretraining a language model on the training texts buys a classifier: from scratch against LM-initialised,
same classifier size and epochs, side by side, over seeds.

    python bench/lm_lift.py --datasets sst2 ag_news_mini        # about 15 minutes on 2 cores
    python bench/lm_lift.py                                     # imdb too: hours on 2 cores

For each dataset a word-level language model (one LSTM layer of 256 units, 128-d embedding, adaptive softmax,
AWD-LSTM's dropouts) is trained once on the training texts only (never a test text; 5 % of them held out for
its validation perplexity). Then, for each seed, two classifiers of the same shape (that LSTM, unidirectional,
concat pooling) train for the same epochs with ULMFiT's fine-tuning recipe (slanted triangular rates,
discriminative rates, gradual unfreezing, dense Adam): one from random weights, one from the language model.
Each keeps the epoch with the best validation accuracy (sst2: its dev split; the others: a stratified 10 % of
the training file), and is scored once on the test split. Reported: test accuracy, mean +- sd over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETTINGS = {"sst2": {"max_len": None}, "ag_news_mini": {"max_len": None}, "imdb": {"max_len": 400}}


def load(name: str):
    from textrnn import load_dataset

    ds = load_dataset("ag_news" if name == "ag_news_mini" else name, DATA / name)
    texts, labels = ds.train.texts(ds.text), ds.labels_of(ds.train)
    if ds.validation is not None:
        val = (ds.validation.texts(ds.text), ds.labels_of(ds.validation))
        train = (texts, labels)
    else:
        from sklearn.model_selection import train_test_split

        tr_x, va_x, tr_y, va_y = train_test_split(texts, labels, test_size=0.1, stratify=labels, random_state=0)
        train, val = (tr_x, tr_y), (va_x, va_y)
    return train, val, (ds.test.texts(ds.text), ds.labels_of(ds.test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lm-epochs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6, help="classifier epochs (the best on validation is kept)")
    args = parser.parse_args()
    from textrnn import TextClassifier
    from textrnn.data.corpus import hold_out
    from textrnn.estimator import FINE_TUNING
    from textrnn.lm import LanguageModel

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            train, val, test = load(name)
            start = time.perf_counter()
            lm = LanguageModel(layers=1, hidden_size=256, embedding_dim=128, tie_weights=False, epochs=args.lm_epochs,
                               progress=False).fit(*hold_out(train[0], 0.05))
            lm_dir = lm.save_pretrained(Path(tmp) / f"{name}-lm")
            lm_seconds = time.perf_counter() - start
            ppl = min(h["val_perplexity"] for h in lm.history_)
            per_epoch = " / ".join(f"{h['val_perplexity']:.1f}" for h in lm.history_)
            print(f"{name}: language model {lm_seconds:.0f} s, validation perplexity by epoch {per_epoch}", flush=True)
            scores = {"scratch": [], "LM-initialised": []}
            for seed in range(args.seeds):
                for arm in scores:
                    common = dict(FINE_TUNING, cell="lstm", embedding_dim=128, hidden_size=256, layers=1,
                                  bidirectional=False, epochs=args.epochs, early_stopping=args.epochs, seed=seed,
                                  max_len=SETTINGS[name]["max_len"], progress=False)
                    if arm == "LM-initialised":
                        common["init_from"] = lm_dir
                    clf = TextClassifier(**common).fit(*train, validation_data=val)
                    scores[arm].append(clf.score(*test))
                    print(f"  seed {seed} {arm}: test {scores[arm][-1]:.4f} (epoch "
                          f"{next(h.epoch for h in clf.history_ if h.best)})", flush=True)
            rows.append((name, ppl, scores))
    print("\n| dataset | LM val. perplexity | from scratch | LM-initialised | lift |\n| --- | --- | --- | --- | --- |")
    for name, ppl, scores in rows:
        def show(values):
            return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"
        lift = 100 * (np.mean(scores["LM-initialised"]) - np.mean(scores["scratch"]))
        print(f"| {name} | {ppl:.1f} | {show(scores['scratch'])} | {show(scores['LM-initialised'])} | "
              f"{lift:+.2f} points |")


if __name__ == "__main__":
    main()
