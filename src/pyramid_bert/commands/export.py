"""``pyramid-bert export``: a dense or pyramid classifier folder as one ONNX graph, checked before it is written.

Example::

    pyramid-bert export models/reviews-fast --out reviews-fast.onnx --precision int8
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import add_force_argument, add_precision_argument
from pyramid_bert.commands.finetune import add_runtime_arguments, prepare_runtime


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export a (pyramid) classifier folder to ONNX, checked against PyTorch with onnxruntime",
        description="One ONNX graph (inputs input_ids, attention_mask[, token_type_ids], batch and length dynamic; "
        "output logits). Before it is written, onnxruntime runs it on generated inputs of other lengths and "
        "batches, padded and not, and its logits must match eager PyTorch; a method that cannot be exported (random) "
        'or a graph that disagrees is refused with the reason. Needs: pip install "pyramid-bert[onnx]".',
    )  # fmt: skip
    parser.add_argument("model", metavar="MODEL_DIR", help="a folder written by `compress` or `finetune`, or any "
                        "save_pretrained classifier")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    add_precision_argument(parser, "; int8 here: onnxruntime's dynamic int8 quantization of the checked graph")
    add_force_argument(parser, "--out")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pyramid_bert.errors import ConfigError
    from pyramid_bert.export import export_folder

    if Path(args.out).suffix.lower() != ".onnx":
        raise ConfigError(f"--out: give a file name ending in .onnx, got {args.out!r}")
    prepare_runtime(args)
    report = export_folder(args.model, args.out, precision=args.precision, force=args.force)
    print(report.summary())
    return 0
