"""Run under torchrun by tests/test_distributed.py: fit a LanguageModel (no dropout) on the first TEXTS IMDB
training reviews with BATCH stream rows per process and save each rank's weights to OUT.rankR as safetensors (with
OUT "-", save nothing: rank 0 prints the perplexity of the training reviews, as a script that reports would, while the
other ranks end as soon as the fit returns). With VALIDATION, the next VALIDATION reviews are the validation texts,
and the fit keeps the weights of its best epoch.

    torchrun --standalone --nproc-per-node 2 tests/scripts/ddp_lm.py OUT BATCH TEXTS [VALIDATION]
"""

import sys
from pathlib import Path

from safetensors.torch import save_file

from textrnn import load_dataset
from textrnn.lm import LanguageModel
from textrnn.training.distributed import world_from_env

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "imdb"
NO_DROPOUT = dict(embed_dropout=0.0, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0, weight_drop=0.0)


def language_model(batch: int) -> LanguageModel:
    # 6,000 words: the adaptive softmax, whose tail clusters some windows leave without a gradient
    return LanguageModel(max_tokens=6000, embedding_dim=32, hidden_size=64, layers=1, batch_size=batch, bptt=20,
                         epochs=1, early_stopping=None, seed=5, device="cpu", progress=False, **NO_DROPOUT)


def main(out: str, batch: str, texts: str, validation: str = "0") -> None:
    reviews = load_dataset("imdb", DATA).train.texts()[: int(texts) + int(validation)]
    train, held_out = reviews[: int(texts)], reviews[int(texts):] or None
    lm = language_model(int(batch)).set_params(early_stopping=2 if held_out else None)
    lm.fit(train, held_out)
    world = world_from_env()
    if out != "-":
        save_file({k: v.contiguous() for k, v in lm.model_.state_dict().items()}, f"{out}.rank{world.rank}")
    elif world.main:
        print(f"perplexity {lm.perplexity(train):.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
