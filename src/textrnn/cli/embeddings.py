"""`textrnn embeddings train|coverage`: word vectors trained on a dataset, and how well a set of vectors covers
a dataset's vocabulary."""

from __future__ import annotations

import argparse
import sys

from ..text import DEFAULT_MAX_TOKENS
from .flags import add_data_flags, data_source


def add_parser(sub) -> None:
    p = sub.add_parser("embeddings", help="word vectors: train word2vec on a dataset's training texts, or measure "
                       "how much of its vocabulary a set of vectors covers")
    esub = p.add_subparsers(dest="embeddings_command", metavar="ACTION", required=True)
    e = esub.add_parser("train", help="train word2vec (gensim) on the training texts, tokenized as the word "
                        "vectorizer does, and save the vectors for `train --embeddings`")
    add_data_flags(e)
    e.add_argument("--dim", type=int, default=100, help="vector size (default %(default)s)")
    e.add_argument("--window", type=int, default=5, help="context window (default %(default)s)")
    e.add_argument("--min-count", type=int, default=1, help="ignore rarer words (default %(default)s)")
    e.add_argument("--epochs", type=int, default=10, help="passes over the texts (default %(default)s)")
    e.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--save", metavar="FILE", required=True,
                   help="vector file to write: word2vec binary for .bin, text otherwise")
    e.set_defaults(func=run_train)
    e = esub.add_parser("coverage", help="how much of a dataset's vocabulary and training tokens a set of word "
                        "vectors covers (the vocabulary `train` would build)")
    e.add_argument("vectors", help="glove-6b-50d or a word2vec/GloVe file")
    add_data_flags(e)
    e.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="vocabulary size (default %(default)s)")
    e.add_argument("--missing", type=int, default=10, metavar="N", help="list the N most frequent words without a "
                   "vector (default %(default)s)")
    e.set_defaults(func=run_coverage)


def run_train(args: argparse.Namespace) -> int:
    from ..text.embeddings import save_vectors, train_word2vec

    dataset = data_source(args).load()
    texts = dataset.train.texts(args.text or dataset.text)
    print(f"training word2vec ({'CBOW' if args.cbow else 'skip-gram'}, {args.dim} dimensions) on {len(texts):,} "
          f"texts of {dataset.name}", file=sys.stderr)
    vectors = train_word2vec(texts, dim=args.dim, window=args.window, min_count=args.min_count, epochs=args.epochs,
                             skip_gram=not args.cbow, seed=args.seed)
    path = save_vectors(vectors, args.save)
    print(f"saved {len(vectors.words):,} vectors of {vectors.dim} dimensions to {path}")
    return 0


def run_coverage(args: argparse.Namespace) -> int:
    from ..text.embeddings import format_coverage, load_vectors, vocabulary_coverage

    dataset = data_source(args).load()
    texts = dataset.train.texts(args.text or dataset.text)
    coverage, missing = vocabulary_coverage(load_vectors(args.vectors), texts, args.max_tokens, args.missing)
    print(f"{dataset.name}: {format_coverage(coverage)}")
    if missing:
        print(f"most frequent words without a vector: {', '.join(missing)}")
    return 0
