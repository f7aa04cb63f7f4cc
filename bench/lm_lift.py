"""What pretraining a language model on the training texts buys a classifier: from scratch against LM-initialised,
same classifier size and epochs, side by side, over seeds.

    python bench/lm_lift.py --datasets sst2 ag_news_mini        # about 30 minutes on 2 cores
    python bench/lm_lift.py                                     # imdb too: hours on 2 cores
    python bench/lm_lift.py --datasets imdb --lm-dir lms --set adversarial=0.5   # reuse lms/imdb-lm if there
    python bench/lm_lift.py --datasets imdb --lm-dir lms --first-seed 1 --seeds 2   # seeds 1 and 2 only

For each dataset a word-level language model (one LSTM layer of 256 units, 128-d embedding, adaptive softmax,
AWD-LSTM's dropouts) is trained once on the training texts only (never a test text; 5 % of them held out for its
validation perplexity). Then, for each seed, two classifiers of the same shape (that LSTM, unidirectional, concat
pooling) train for the same epochs (per dataset: SETTINGS) with ULMFiT's fine-tuning recipe (slanted triangular
rates, discriminative rates, gradual unfreezing, dense Adam): one from random weights, one from the language model.
Each keeps the epoch with the best validation accuracy (sst2: its dev split; the others: a stratified 10 % of the
training file), and is scored once on the test split. Reported: test accuracy, mean +- sd over seeds, and the
validation accuracy a change is to be judged by. `--lm-dir` keeps the language models (and reuses one found there,
so that changes to the classifiers can be screened without training it again); `--set` changes a setting of both
classifiers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# Per dataset: tokens kept per text, classifier epochs, and the language model's most epochs (it stops early when
# its validation perplexity has not improved for 2). The small corpora train a language model epoch in under a minute
# and their LM-initialised classifiers were still improving at the last of 6 epochs in every seed (validation), so
# they get 10 classifier epochs (both arms) and up to 20 LM epochs; IMDB's LM costs 7 minutes an epoch here.
SETTINGS = {"sst2": {"max_len": None, "epochs": 10, "lm_epochs": 20},
            "ag_news_mini": {"max_len": None, "epochs": 10, "lm_epochs": 20},
            "imdb": {"max_len": 400, "epochs": 6, "lm_epochs": 5}}


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
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from this one up (default 0): a long run can be split over sessions")
    parser.add_argument("--lm-epochs", type=int, help="the language model's most epochs (default: per dataset, "
                        "SETTINGS)")
    parser.add_argument("--epochs", type=int, help="classifier epochs, the best on validation kept (default: per "
                        "dataset, SETTINGS)")
    parser.add_argument("--lm-dir", help="keep the language models here as NAME-lm, reusing one already there "
                        "(default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="change one TextClassifier setting of both arms (JSON values: 0.5, true, null)")
    parser.add_argument("--arms", nargs="+", default=["scratch", "LM-initialised"],
                        choices=["scratch", "LM-initialised"], help="the arms to train (default: both)")
    args = parser.parse_args()
    changes = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
    from textrnn import TextClassifier
    from textrnn.data.corpus import hold_out
    from textrnn.classifier import FINE_TUNING
    from textrnn.lm import LanguageModel

    if changes:
        print(f"both classifiers with {json.dumps(changes)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            train, val, test = load(name)
            lm_dir = Path(args.lm_dir or tmp) / f"{name}-lm"
            settings = dict(SETTINGS[name])  # the flags, where given, over the dataset's own epochs
            settings.update({"epochs": args.epochs} if args.epochs is not None else {})
            settings.update({"lm_epochs": args.lm_epochs} if args.lm_epochs is not None else {})
            start = time.perf_counter()
            if lm_dir.is_dir():
                lm = LanguageModel.from_pretrained(lm_dir)
                where = f"read from {lm_dir}"
            else:
                lm = LanguageModel(layers=1, hidden_size=256, embedding_dim=128, tie_weights=False,
                                   epochs=settings["lm_epochs"], progress=False).fit(*hold_out(train[0], 0.05))
                lm.save_pretrained(lm_dir)
                where = f"{time.perf_counter() - start:.0f} s"
            ppl = min(h["val_perplexity"] for h in lm.history_)
            per_epoch = " / ".join(f"{h['val_perplexity']:.1f}" for h in lm.history_)
            print(f"{name}: language model {where}, validation perplexity by epoch {per_epoch}", flush=True)
            scores = {arm: [] for arm in args.arms}
            validation = {arm: [] for arm in args.arms}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for arm in scores:
                    common = dict(FINE_TUNING, cell="lstm", embedding_dim=128, hidden_size=256, layers=1,
                                  bidirectional=False, epochs=settings["epochs"], early_stopping=settings["epochs"],
                                  seed=seed, max_len=settings["max_len"], progress=False, **changes)
                    if arm == "LM-initialised":
                        common["init_from"] = lm_dir
                    clf = TextClassifier(**common).fit(*train, validation_data=val)
                    kept = next(h for h in clf.history_ if h.best)
                    scores[arm].append(clf.score(*test))
                    validation[arm].append(kept.val_accuracy)
                    print(f"  seed {seed} {arm}: test {scores[arm][-1]:.4f}, validation {kept.val_accuracy:.4f} "
                          f"(epoch {kept.epoch})", flush=True)
            rows.append((name, ppl, scores, validation))

    def show(values):
        if not values:
            return "-"
        return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"

    print("\n| dataset | LM val. perplexity | from scratch | LM-initialised | lift | validation: scratch / LM |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for name, ppl, scores, validation in rows:
        both = all(scores.get(arm) for arm in ("scratch", "LM-initialised"))
        lift = f"{100 * (np.mean(scores['LM-initialised']) - np.mean(scores['scratch'])):+.2f} points" if both else "-"
        print(f"| {name} | {ppl:.1f} | {show(scores.get('scratch'))} | {show(scores.get('LM-initialised'))} | "
              f"{lift} | {show(validation.get('scratch'))} / {show(validation.get('LM-initialised'))} |")


if __name__ == "__main__":
    main()
