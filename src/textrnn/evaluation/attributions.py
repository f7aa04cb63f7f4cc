"""Why a classifier decided what it did: one score per token, from Captum, over the embedded tokens.

* `integrated-gradients` (the default): the path integral of the target class's logit gradient from a baseline
  to the text, along a straight line in embedding space. The baseline is padding's embedding at every position,
  with the text's own length (so a masked model still reads as many steps). Completeness holds: the scores add up
  to logit(text) - logit(baseline). Captum reports the gap; the number of steps is doubled until it is under 1 %
  of that difference (or `MAX_STEPS` is reached, and the explanation says how far off it is).
* `occlusion`: each token in turn replaced by padding's embedding; its score is how much the target logit drops.

Scores are in logits: positive pushes towards the explained class, negative away from it. Tokens that
truncation (`max_len`) keeps out of the model are returned with `read=False` and no score.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..data.batching import truncate
from ..errors import TextrnnError
from ..text.vectorizer import PAD_ID

METHODS = ("integrated-gradients", "occlusion")
DEFAULT_STEPS = 50
MAX_STEPS = 800
COMPLETENESS_TOLERANCE = 0.01  # |sum of scores - logit difference| / |logit difference|


@dataclass
class TokenScore:
    token: str  # the tokenizer's token ("[UNK]" for an unknown word)
    start: int  # character span in the original text
    end: int
    score: float | None  # None when truncation kept the token out of the model
    read: bool = True


@dataclass
class Explanation:
    text: str
    label: str  # the explained class (the predicted one unless another was asked for)
    probabilities: dict[str, float]
    tokens: list[TokenScore]
    method: str
    logit: float  # the explained class's logit for the text
    baseline_logit: float | None = None  # integrated gradients: its logit for the all-padding baseline
    delta: float | None = None  # integrated gradients: sum of scores - (logit - baseline_logit)
    steps: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _cudnn_off(device: torch.device):
    # cuDNN's RNN backward only runs in training mode; the explanation needs eval mode (no dropout)
    return torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else contextlib.nullcontext()


def explain_one(model, vectorizer, text: str, labels: list[str], max_len: int | None = None, truncate_side="head",
                method: str = "integrated-gradients", target: str | None = None,
                steps: int | None = None) -> Explanation:
    """Token scores for one text with `model` (an RNNClassifier) and the `vectorizer` it was trained with."""
    try:
        from captum.attr import IntegratedGradients, Occlusion
    except ImportError:
        raise TextrnnError("explanations need Captum: pip install 'textrnn[explain]'") from None
    if method not in METHODS:
        raise TextrnnError(f"unknown explanation method {method!r}: choose one of {', '.join(METHODS)}")
    if steps is not None and not 2 <= steps <= MAX_STEPS:
        raise TextrnnError(f"steps must be from 2 to {MAX_STEPS}, got {steps}")
    encoding = vectorizer.tokenizer.encode(text, add_special_tokens=False)
    kept = truncate(np.arange(len(encoding.ids)), max_len, truncate_side) if max_len else np.arange(len(encoding.ids))
    model.eval()
    device = next(model.parameters()).device
    tokens = torch.tensor([[encoding.ids[i] for i in kept]], dtype=torch.long, device=device)
    lengths = torch.tensor([tokens.shape[1]], dtype=torch.long)

    forward = model.forward_embedded  # logits from embedded tokens: what Captum differentiates
    with _cudnn_off(device):
        with torch.no_grad():
            embedded = model.encoder.embed(tokens)
            baseline = model.encoder.embed(torch.full_like(tokens, PAD_ID))
            # a bag of n-grams (if the model reads one) is part of the text's context, held fixed: the scores are
            # the recurrence's input's, and they still add up to the logit's difference from the baseline's
            bag = model.bag_of_ngrams(tokens, lengths)
            logits = forward(embedded, lengths, bag)[0].float()
            baseline_logits = forward(baseline, lengths, bag)[0].float()
        probabilities = torch.softmax(logits, 0).tolist()
        if target is None:
            index = int(logits.argmax())
        elif target in labels:
            index = labels.index(target)
        else:
            raise TextrnnError(f"unknown class {target!r}: the model's classes are {', '.join(labels)}")
        result = Explanation(text=text, label=labels[index], probabilities=dict(zip(labels, probabilities)),
                             tokens=[], method=method, logit=float(logits[index]))
        scores = np.zeros(0)
        if tokens.shape[1] and method == "integrated-gradients":
            difference = float(logits[index] - baseline_logits[index])
            n = steps or DEFAULT_STEPS
            ig = IntegratedGradients(forward)
            while True:
                attributions, delta = ig.attribute(embedded, baselines=baseline, target=index,
                                                   additional_forward_args=(lengths, bag), n_steps=n,
                                                   internal_batch_size=min(n, 64), return_convergence_delta=True)
                gap = abs(float(delta[0]))
                if steps is not None or gap <= COMPLETENESS_TOLERANCE * max(abs(difference), 1e-6) or n >= MAX_STEPS:
                    break
                n = min(2 * n, MAX_STEPS)
            scores = attributions[0].sum(-1).detach().float().cpu().numpy()
            result.baseline_logit, result.delta, result.steps = float(baseline_logits[index]), float(delta[0]), n
        elif tokens.shape[1]:
            attributions = Occlusion(forward).attribute(embedded, sliding_window_shapes=(1, embedded.shape[2]),
                                                        baselines=baseline, target=index,
                                                        additional_forward_args=(lengths, bag))
            # the window covers a whole embedding, and Occlusion gives each of its elements the window's score
            scores = attributions[0, :, 0].detach().float().cpu().numpy()
    score_of = dict(zip(kept.tolist(), scores.tolist()))
    result.tokens = [TokenScore(token=tok, start=int(start), end=int(end), score=score_of.get(i), read=i in score_of)
                     for i, (tok, (start, end)) in enumerate(zip(encoding.tokens, encoding.offsets))]
    return result
