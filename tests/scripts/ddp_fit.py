"""Run under torchrun by tests/test_distributed.py: fit a TextClassifier on the first ROWS rows of ag_news_mini with
a per-process batch of BATCH and save each rank's trained weights to OUT.rankR as safetensors. With "put-back",
rank 0's callbacks put its starting weights back at the end of training, as early stopping puts back its best
epoch's (a callback is given to rank 0 alone), and the starting weights are saved to OUT.start too.

    torchrun --standalone --nproc-per-node 2 tests/scripts/ddp_fit.py OUT CELL OPTIMIZER BATCH ROWS [put-back]
"""

import sys
from pathlib import Path

from safetensors.torch import save_file

from textrnn import TextClassifier, load_ag_news
from textrnn.training import Callback
from textrnn.training.distributed import world_from_env

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ag_news_mini"


class PutBackTheStart(Callback):
    def __init__(self, out: str):
        self.out = out

    def on_train_begin(self, loop) -> None:
        self.start = {k: v.detach().clone() for k, v in loop.current_weights().items()}
        save_file(self.start, f"{self.out}.start")

    def on_train_end(self, loop) -> None:
        loop.model.load_state_dict(self.start)


def main(out: str, cell: str, optimizer: str, batch: str, rows: str, put_back: str = "") -> None:
    data = load_ag_news(DATA)
    texts, labels = data.train.texts()[: int(rows)], data.labels_of(data.train)[: int(rows)]
    clf = TextClassifier(cell=cell, optimizer=optimizer, batch_size=int(batch), epochs=1, seed=3,
                         embedding_dropout=0.0, ngram_dropout=0.0, progress=False, device="cpu")
    clf.fit(texts, labels, callbacks=[PutBackTheStart(out)] if put_back == "put-back" else None)
    save_file({k: v.contiguous() for k, v in clf.model_.state_dict().items()}, f"{out}.rank{world_from_env().rank}")


if __name__ == "__main__":
    main(*sys.argv[1:])
