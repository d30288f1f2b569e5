"""``pyramid-bert data``: list, fetch and inspect the catalog's models, corpora, GLUE and LRA tasks.

Examples::

    pyramid-bert data list
    pyramid-bert data fetch all            # the model, the six text corpora and the LRA data
    pyramid-bert data fetch rt-polarity
    pyramid-bert data show trec --examples 5
    pyramid-bert data show mrpc --glue-dir ~/glue_data
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from pyramid_bert.cli.flags import add_force_argument, nonneg_int, positive_int, seed_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data", help="list, fetch and inspect models, corpora, GLUE and LRA tasks",
        description="The data catalog: registry-shipped model and corpora (cached in $PYRAMID_BERT_HOME, default "
        "~/.cache/pyramid-bert), GLUE tasks (from --glue-dir / $PYRAMID_BERT_GLUE_DIR or `datasets`) and "
        "Long Range Arena data.",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="name, kind, size, splits, metric, N and whether it is cached")
    fetch = actions.add_parser("fetch", help="fetch NAME (or a group: all, models, text, glue, lra) into the cache")
    fetch.add_argument("name", help="a name from `data list`, or all | models | text | glue | lra")
    fetch.add_argument("--force", action="store_true", help="download again even when the cache is intact")
    show = actions.add_parser("show", help="counts per split and label, and a few examples")
    show.add_argument("name", help="a name from `data list`")
    show.add_argument("--examples", type=nonneg_int, default=3, help="examples to print per split (default 3)")
    export = actions.add_parser("export", help="write a split of a text task as CSV/TSV/JSONL (text, label names)")
    export.add_argument("name", help="a text task from `data list`, e.g. rt-polarity")
    export.add_argument("--out", required=True, help="file to write: .csv, .tsv or .jsonl")
    export.add_argument("--split", default="train", choices=("train", "dev", "test"), help="which split (train)")
    export.add_argument("--rows", type=positive_int, help="a seeded random sample of this many examples (default: all)")
    add_force_argument(export, "--out")
    for sub in (listing, fetch, show, export):
        sub.add_argument(
            "--glue-dir",
            default=None,
            help="folder in the standard GLUE TSV layout (default $PYRAMID_BERT_GLUE_DIR; else the `datasets` library)",
        )
        sub.add_argument("--seed", type=seed_int, default=0, help="seed of the dev hold-out (default 0)")
    parser.set_defaults(func=run)


def print_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Show a warning (e.g. a corrupted cache being fetched again) as one line on stderr."""
    print(f"pyramid-bert data: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.data import inventory

    with warnings.catch_warnings():
        warnings.showwarning = print_warning
        if args.action == "list":
            text = inventory.list_data(args.glue_dir)
        elif args.action == "fetch":
            text = inventory.fetch_data(args.name, force=args.force, glue_dir=args.glue_dir, seed=args.seed)
        elif args.action == "show":
            text = inventory.show_data(args.name, examples=args.examples, glue_dir=args.glue_dir, seed=args.seed)
        else:
            text = inventory.export_data(args.name, out=args.out, split=args.split, rows=args.rows, seed=args.seed,
                                         glue_dir=args.glue_dir, force=args.force)  # fmt: skip
    print(text)
    return 0
