"""`textrnn export`: a model directory as ONNX, for onnxruntime and tokenizers without PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model directory to ONNX (with its tokenizer and labels)")
    p.add_argument("model", help="model directory")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="directory to write model.onnx, tokenizer.json and config.json "
                   "into (default: MODEL/onnx, where `--runtime onnx MODEL` finds it)")
    p.add_argument("--quantize", choices=["int8"], help="also write model.int8.onnx: int8 weights, activations "
                   "quantized on the fly (onnxruntime's dynamic quantization)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import TextrnnError
    from ..model_files import check_model_directory

    check_model_directory(args.model)  # before torch and onnx are imported
    from ..deploy.export import export_onnx
    from ..deploy.runtime import ONNX_SUBDIR

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise TextrnnError("ONNX export needs onnx and onnxruntime: pip install 'textrnn[onnx]'") from None
    out = export_onnx(args.model, args.out or Path(args.model) / ONNX_SUBDIR, quantize=args.quantize)
    files = sorted(p.name for p in out.iterdir())
    sizes = ", ".join(f"{name} ({(out / name).stat().st_size / 1e6:.2f} MB)" for name in files)
    print(f"exported {args.model} to {out}: {sizes}")
    return 0
