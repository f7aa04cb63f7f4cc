"""Language models: `BaseLanguageModel` (fit on texts, perplexity, save/load) and `TextGenerator` (sample text
from a saved one, token by token, or score each token of a text). The estimator users hold is `lm.LanguageModel`:
this class with scikit-learn's `BaseEstimator`, whose import (SciPy with it) the command line does without.

A language model is saved as a model directory like a classifier's (config.json with architecture
"RNNLanguageModel", model.safetensors, tokenizer.json, trainer_state.json), so a classifier can later start from
its vocabulary, embedding and encoder. Texts are joined into one stream with the end-of-text id (0) after each;
generation starts after an end-of-text, as every training text did, and stops at the next one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .data import check_texts, fingerprint
from .errors import TextrnnError
from .models.language_model import LMConfig, RNNLanguageModel
from .pretrained import TOKENIZER_FILE, load_language_model_directory, save_model_directory, versions
from .text import DEFAULT_MAX_TOKENS, TOKENIZERS, load_vectorizer, make_vectorizer
from .text.vectorizer import OOV_ID, PAD_ID
from .training import Checkpointer, checkpoint_to_resume, hyperparameter_names, recordable_params
from .training.distributed import world_from_env
from .training.lm_loop import LMTensorBoard, LMTrainConfig, evaluate_lm_loss, fit_language_model, token_stream

ADAPTIVE_FROM = 5_000  # softmax="auto": an adaptive softmax for vocabularies at least this large
END_ID = PAD_ID  # the end-of-text marker in the stream (padding's id never occurs inside a text)


def stream_of(vectorizer, texts: Sequence[str]) -> np.ndarray:
    """The texts as one stream of token ids, each followed by the end-of-text id."""
    ids, lengths = vectorizer.encode_flat(texts)
    return token_stream(ids, lengths, END_ID)


class BaseLanguageModel:
    """A recurrent language model (AWD-LSTM's regularisation), trained by truncated BPTT on texts.

    Parameters: the network's shape and regularisation (see `models.language_model.LMConfig`; softmax "auto" is
    the adaptive one from 5,000 tokens up, else the full one with tied weights), the tokenizer
    ("word", "char", "wordpiece", "bpe") and its `max_tokens`, and training (`batch_size` rows of `bptt`-step
    windows, Adam at `lr`, `epochs`, `clip_norm`, `weight_decay`, `early_stopping` on validation loss,
    `precision`, `seed`, `device`). Learned: `vectorizer_`, `model_`, `history_`, `run_record_`.
    """

    def __init__(self, cell: str = "lstm", embedding_dim: int = 128, hidden_size: int = 256, layers: int = 2,
                 tie_weights: bool = True, embed_dropout: float = 0.1, input_dropout: float = 0.3,
                 hidden_dropout: float = 0.2, output_dropout: float = 0.3, weight_drop: float = 0.3,
                 softmax: str = "auto", tokenizer: str = "word", max_tokens: int = DEFAULT_MAX_TOKENS,
                 batch_size: int = 32, bptt: int = 70, epochs: int = 5, lr: float = 3e-3, seed: int = 0,
                 device: str = "auto", clip_norm: float | None = 0.25, weight_decay: float = 0.0,
                 early_stopping: int | None = 2, precision: str = "fp32", progress: bool = True,
                 checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 tensorboard_dir: str | os.PathLike | None = None):
        self.cell, self.embedding_dim, self.hidden_size, self.layers = cell, embedding_dim, hidden_size, layers
        self.tie_weights, self.embed_dropout, self.input_dropout = tie_weights, embed_dropout, input_dropout
        self.hidden_dropout, self.output_dropout, self.weight_drop = hidden_dropout, output_dropout, weight_drop
        self.softmax, self.tokenizer, self.max_tokens = softmax, tokenizer, max_tokens
        self.batch_size, self.bptt, self.epochs, self.lr, self.seed = batch_size, bptt, epochs, lr, seed
        self.device, self.clip_norm, self.weight_decay = device, clip_norm, weight_decay
        self.early_stopping, self.precision, self.progress = early_stopping, precision, progress
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, checkpoint_every
        self.tensorboard_dir = tensorboard_dir

    def _configs(self, vocab_size: int) -> tuple[LMConfig, LMTrainConfig]:
        softmax = self.softmax
        if softmax == "auto":  # measured on IMDB (bench/README.md): faster and no worse once the vocabulary is large
            softmax = "adaptive" if vocab_size >= ADAPTIVE_FROM else "full"
        model = LMConfig(vocab_size=vocab_size, cell=self.cell, embedding_dim=self.embedding_dim,
                         hidden_size=self.hidden_size, layers=self.layers,
                         tie_weights=self.tie_weights and softmax == "full", embed_dropout=self.embed_dropout,
                         input_dropout=self.input_dropout, hidden_dropout=self.hidden_dropout,
                         output_dropout=self.output_dropout, weight_drop=self.weight_drop, softmax=softmax)
        train = LMTrainConfig(batch_size=self.batch_size, bptt=self.bptt, epochs=self.epochs, lr=self.lr,
                              seed=self.seed, device=self.device, clip_norm=self.clip_norm,
                              weight_decay=self.weight_decay, early_stopping=self.early_stopping,
                              precision=self.precision)
        return model, train

    def fit(self, texts: Sequence[str], validation_texts: Sequence[str] | None = None,
            metadata: dict | None = None, resume=False) -> "BaseLanguageModel":
        """Learn the vocabulary from `texts` and the weights; validate on `validation_texts` after each epoch.

        With `checkpoint_dir`, checkpoints are written after every epoch, every `checkpoint_every` windows and on
        Ctrl-C; `resume=True` continues the run whose checkpoints are there (the same texts and settings), bit
        for bit as if it had never stopped (or a `training.Checkpoint` already read).
        """
        if self.tokenizer not in TOKENIZERS:
            raise TextrnnError(f"unknown tokenizer {self.tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")
        texts = [t for t in check_texts(texts) if t.strip()]
        if not texts:
            raise TextrnnError("the corpus is empty: no text to learn from")
        validation = [t for t in check_texts(validation_texts, "validation texts") if t.strip()] \
            if validation_texts is not None else None
        data = {"train": {"texts": len(texts), "sha256": fingerprint(texts, [0] * len(texts))}}
        if validation:
            data["validation"] = {"texts": len(validation), "sha256": fingerprint(validation, [0] * len(validation))}
        record = {"params": recordable_params(self), "data": data, "versions": versions(),
                  "metadata": dict(metadata or {})}
        checkpointer, checkpoint = None, None
        if self.checkpoint_dir is not None:
            checkpointer = Checkpointer(Path(self.checkpoint_dir), self.checkpoint_every, run=record)
        if resume:
            checkpoint = self._checkpoint_to_resume(resume, checkpointer, record)
            vectorizer = load_vectorizer(checkpoint.path / TOKENIZER_FILE, self.tokenizer, self.max_tokens)
        else:
            if checkpointer is not None and checkpointer.paths() and world_from_env().main:
                checkpointer.clear()  # an earlier run's checkpoints would look newer to a later resume
            vectorizer = make_vectorizer(self.tokenizer, self.max_tokens).adapt(texts)
        if checkpointer is not None:
            checkpointer.files = {TOKENIZER_FILE: vectorizer.save}
        vocab_size = self.max_tokens if self.tokenizer == "word" else vectorizer.vocab_size
        model_config, train_config = self._configs(vocab_size)
        train = stream_of(vectorizer, texts)
        val = stream_of(vectorizer, validation) if validation else None
        callbacks = [LMTensorBoard(self.tensorboard_dir)] if self.tensorboard_dir is not None else []
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = RNNLanguageModel(model_config)
                history = fit_language_model(model, train, val, train_config, progress=self.progress,
                                             checkpointer=checkpointer, resume=checkpoint, callbacks=callbacks)
        finally:
            for callback in callbacks:
                callback.close()
        self.vectorizer_, self.model_, self.history_ = vectorizer, model, history
        self.run_record_ = record
        return self

    def _checkpoint_to_resume(self, resume, checkpointer, record: dict):
        checkpoint = checkpoint_to_resume(resume, checkpointer)
        saved = checkpoint.state["run"]
        changed = [f"{k} {saved['params'].get(k)!r} -> {v!r}" for k, v in record["params"].items()
                   if k not in ("device", "checkpoint_dir", "checkpoint_every", "tensorboard_dir")
                   and saved["params"].get(k) != v]
        if changed:
            raise TextrnnError(f"the checkpoint {checkpoint.path} belongs to a run with other settings: "
                               f"{', '.join(changed)}")
        if saved["data"] != record["data"]:
            raise TextrnnError(f"the checkpoint {checkpoint.path} was trained on other texts")
        return checkpoint

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TextrnnError("this language model is not trained yet: call fit() or from_pretrained() first")

    def perplexity(self, texts: Sequence[str]) -> float:
        """exp(mean cross-entropy per token) of `texts`, end-of-text markers included."""
        self._check_fitted()
        stream = stream_of(self.vectorizer_, [t for t in check_texts(texts) if t.strip()])
        if len(stream) < 2:
            raise TextrnnError("nothing to score: the texts hold no tokens")
        rows = torch.from_numpy(stream).reshape(1, -1)
        return math.exp(evaluate_lm_loss(self.model_, rows, self.bptt))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        self._check_fitted()
        tokenizer = {"type": self.tokenizer, "max_tokens": self.max_tokens, "max_len": None, "truncate": "head"}
        state = {"params": self.run_record_["params"] if hasattr(self, "run_record_") else recordable_params(self),
                 "history": getattr(self, "history_", []), "run": getattr(self, "run_record_", None)}
        return save_model_directory(directory, self.model_, self.vectorizer_, None, tokenizer, state)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str = "auto") -> "BaseLanguageModel":
        loaded = load_language_model_directory(directory, device)
        c = loaded.model.config
        params = {k: getattr(c, k) for k in ("cell", "embedding_dim", "hidden_size", "layers", "tie_weights",
                                              "embed_dropout", "input_dropout", "hidden_dropout", "output_dropout",
                                              "weight_drop", "softmax")}
        state = loaded.trainer_state or {}
        known = hyperparameter_names(cls)
        params.update({k: v for k, v in state.get("params", {}).items() if k in known and k not in params
                       and k not in ("device", "checkpoint_dir", "checkpoint_every", "tensorboard_dir")})
        lm = cls(**{**params, "tokenizer": loaded.tokenizer["type"], "max_tokens": loaded.tokenizer["max_tokens"]},
                 device=device, progress=False)
        lm.vectorizer_, lm.model_ = loaded.vectorizer, loaded.model
        lm.history_, lm.run_record_ = state.get("history", []), state.get("run")
        return lm


class TextGenerator:
    """Text from a trained language model: `generate` (a string), `stream` (pieces as they come),
    `token_probabilities` (each token of a text with the probability the model gave it)."""

    def __init__(self, model: RNNLanguageModel, vectorizer, kind: str = "word"):
        self.model, self.vectorizer, self.kind = model.eval(), vectorizer, kind
        self.vocabulary = vectorizer.vocabulary
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str = "auto") -> "TextGenerator":
        loaded = load_language_model_directory(directory, device)
        return cls(loaded.model, loaded.vectorizer, loaded.tokenizer["type"])

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt's token ids; a prompt none of whose tokens the model knows is an error."""
        ids = self.vectorizer.encode_reference([prompt])[0] if prompt.strip() else []
        if ids and all(i == OOV_ID for i in ids):
            raise TextrnnError(f"every token of the prompt {prompt!r} is outside the model's vocabulary: give words "
                               "it knows (or an empty prompt)")
        space = self.vectorizer.tokenizer.token_to_id(" ")
        if self.kind == "char" and ids and prompt[-1].isspace() and space is not None:
            ids.append(space)  # the character normalizer strips a trailing space; the model should see it
        return ids

    def piece(self, token_id: int, first: bool) -> str:
        """How a generated token reads when appended to the text so far."""
        token = self.vocabulary[token_id]
        if self.kind == "char":
            return token
        if self.kind == "wordpiece" and token.startswith("##"):
            return token[2:]
        return token if first else " " + token

    @torch.no_grad()
    def stream(self, prompt: str = "", max_tokens: int = 50, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None) -> Iterator[str]:
        """The generated text after the prompt, piece by piece (each with the space before it, where one is
        due), so that prompt + the pieces is the text. Greedy
        when temperature is 0; [UNK] is never drawn; the end-of-text token ends it."""
        if max_tokens < 1:
            raise TextrnnError(f"max_tokens must be at least 1, got {max_tokens}")
        if temperature < 0:
            raise TextrnnError(f"temperature must be 0 (greedy) or more, got {temperature}")
        if top_k is not None and top_k < 1:
            raise TextrnnError(f"top_k must be at least 1, got {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise TextrnnError(f"top_p must be in (0, 1], got {top_p}")
        generator = torch.Generator(device="cpu")
        generator.manual_seed(0 if seed is None else seed)
        ids = [END_ID, *self.prompt_ids(prompt)]
        outputs, state = self.model(torch.tensor([ids], device=self.device))
        first = not prompt or prompt[-1].isspace()  # the next word needs no space before it
        for _ in range(max_tokens):
            logits = self.model.log_probs(outputs[:, -1]).float().cpu()[0]
            logits[OOV_ID] = -math.inf
            next_id = self._choose(logits, temperature, top_k, top_p, generator)
            if next_id == END_ID:
                return
            yield self.piece(next_id, first)
            first = False
            outputs, state = self.model(torch.tensor([[next_id]], device=self.device), state)

    @staticmethod
    def _choose(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
                generator: torch.Generator) -> int:
        if temperature == 0:
            return int(logits.argmax())
        logits = logits / temperature
        if top_k is not None and top_k < len(logits):
            threshold = torch.topk(logits, top_k).values[-1]
            logits = logits.masked_fill(logits < threshold, -math.inf)
        if top_p is not None and top_p < 1:
            ordered, order = torch.sort(logits, descending=True)
            cumulative = torch.softmax(ordered, 0).cumsum(0)
            drop = cumulative - torch.softmax(ordered, 0) >= top_p  # keep the smallest set reaching top_p
            logits[order[drop]] = -math.inf
        return int(torch.multinomial(torch.softmax(logits, 0), 1, generator=generator))

    def generate(self, prompt: str = "", **options) -> str:
        """The prompt followed by the generated text (options as `stream`'s)."""
        return prompt + "".join(self.stream(prompt, **options))

    @torch.no_grad()
    def token_probabilities(self, text: str) -> list[tuple[str, float]]:
        """Each token of `text` with the probability the model gave it after the tokens before it (per-step
        outputs of the language model)."""
        ids = self.vectorizer.encode_reference([text])[0]
        if not ids:
            return []
        outputs, _ = self.model(torch.tensor([[END_ID, *ids[:-1]]], device=self.device))
        log_probs = self.model.log_probs(outputs)[0].float().cpu()
        return [(self.vocabulary[i], math.exp(float(log_probs[t, i]))) for t, i in enumerate(ids)]
