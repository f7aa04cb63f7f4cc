import json, sys  # a textrnn ONNX export with onnxruntime and tokenizers alone: no textrnn, no torch
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
export, texts = sys.argv[1], sys.argv[2:]                # the directory `textrnn export` wrote, then texts
config = json.load(open(f"{export}/config.json"))
assert "linear_part" not in config, "a linear n-gram part beside the network: use textrnn's OnnxClassifier"
tokenizer = Tokenizer.from_file(f"{export}/tokenizer.json")
session = ort.InferenceSession(f"{export}/model.onnx")
keep = config["tokenizer"]["max_len"]                      # the first max_len tokens (--truncate head)
ids = [e.ids[:keep] for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
tokens = np.zeros((len(ids), max(1, *map(len, ids))), dtype=np.int64)  # padded with 0 at the end
for row, seq in zip(tokens, ids): row[: len(seq)] = seq
feed = {"tokens": tokens, "lengths": np.array([len(seq) for seq in ids], dtype=np.int64)}
for text, p in zip(texts, session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]):
    print(config["labels"][p.argmax()], f"{p.max():.3f}", text)
