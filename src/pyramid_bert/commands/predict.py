"""``pyramid-bert predict``: label a CSV/TSV/JSONL file (or a datasets folder) with a model folder.

Example::

    pyramid-bert predict models/reviews-fast --input new.csv --output new-labelled.csv
"""

from __future__ import annotations

import argparse
from typing import Any

from pyramid_bert.cli.flags import (
    add_compile_argument,
    add_data_arguments,
    add_force_argument,
    add_precision_argument,
    batch_size_int,
)
from pyramid_bert.commands.finetune import add_runtime_arguments, prepare_runtime


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict", help="label the texts of a file with a (pyramid) classifier folder",
        description="Batched predictions (label, score) for every row of --input, written to --output (CSV, TSV or "
        "JSONL by extension) with the input's columns; columns label/score (predicted_label/predicted_score when "
        "the input has those names).",
    )  # fmt: skip
    parser.add_argument("model", help="a folder written by `compress` or `finetune`, or any save_pretrained classifier")
    parser.add_argument("--input", required=True, metavar="FILE", help="texts: CSV, TSV, JSONL or a datasets folder")
    parser.add_argument("--output", required=True, metavar="FILE", help="where to write the predictions")
    add_data_arguments(parser, with_labels=False)
    parser.add_argument("--batch-size", type=batch_size_int, default=128, help="inference batch (default 128)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    add_precision_argument(parser)
    add_force_argument(parser, "--output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_compile_argument(parser)
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.compress.predict import predict_file
    from pyramid_bert.errors import ConfigError
    from pyramid_bert.training.config import resolve_device

    columns = tuple(args.text_column or ["text"])
    if len(columns) > 2:
        raise ConfigError(f"--text-column: one column, or two for sentence pairs; got {', '.join(columns)}")
    resolve_device(args.device)
    prepare_runtime(args)
    count = predict_file(
        args.model, args.input, args.output, text_columns=columns, batch_size=args.batch_size,
        max_length=args.max_length, device=args.device, progress=not args.no_progress,
        replace=args.force, precision=args.precision, compile=args.compile,
    )  # fmt: skip
    print(f"predictions: {args.output} ({count} rows)")
    return 0
