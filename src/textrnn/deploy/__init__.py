"""Deployment without PyTorch: export a model directory to ONNX (export.py), and classify with onnxruntime and
the tokenizer alone (runtime.py)."""
