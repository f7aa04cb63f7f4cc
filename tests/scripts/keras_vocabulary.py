"""Run by tests/test_vectorizer.py where TensorFlow is installed: Keras's own TextVectorization adapted on the
texts in IN (JSON: {"max_tokens": N, "adapt": [...], "encode": [...]}), its vocabulary and the ids of the texts
to encode written to OUT as JSON; several pairs in one process, which imports TensorFlow once.

    python tests/scripts/keras_vocabulary.py IN OUT [IN OUT ...]
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(source: str, out: str) -> None:
    task = json.loads(open(source, encoding="utf-8").read())
    layer = keras.layers.TextVectorization(max_tokens=task["max_tokens"], ragged=True)
    layer.adapt(tf.constant(task["adapt"]))
    ids = layer(tf.constant(task["encode"])).to_list()
    result = {"tensorflow": tf.__version__, "keras": keras.__version__,
              "vocabulary": [str(w) for w in layer.get_vocabulary()], "ids": [[int(i) for i in row] for row in ids]}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False)


if __name__ == "__main__":
    pairs = sys.argv[1:]
    for i in range(0, len(pairs), 2):
        main(*pairs[i : i + 2])
