"""The ``pyramid-bert`` command line.

Each sub-command lives in its own module under :mod:`pyramid_bert.commands` and exposes
``register(subparsers) -> None``; the module adds its parser and sets ``func`` (a callable taking the
parsed namespace and returning an exit code). This file only wires them together, so that importing the
CLI stays cheap: heavy imports (torch, transformers) happen inside each command's ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import NoReturn

from pyramid_bert import __version__
from pyramid_bert.errors import PyramidBertError

COMMAND_MODULES = (
    "reproduce",
    "finetune",
    "evaluate",
    "bench",
    "data",
    "sweep",
    "report",
    "lra",
    "compress",
    "predict",
    "export",
    "analyze",
    "ablate",
)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit 2), like every other CLI error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command registered (sub-parsers share its class)."""
    parser = OneLineErrorParser(
        prog="pyramid-bert",
        description="Pyramid-BERT: faster BERT-family classifiers by successive core-set token selection.",
    )
    parser.add_argument("--version", action="version", version=f"pyramid-bert {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"pyramid_bert.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    args.argv = words  # the re-run line of reports (pyramid_bert.cli.flags.rerun_line)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PyramidBertError as error:
        print(f"pyramid-bert {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pyramid-bert {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
