"""The ``--force`` flag of every command that writes where a flag says, and the rule it lifts (one definition; the
rule itself is :func:`pyramid_bert.io.check_output_file` / :func:`pyramid_bert.io.check_output_dir`)."""

from __future__ import annotations

import argparse


def add_force_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--force``: replace ``what`` (e.g. "--json-out") even when it exists, or, for a folder, write into one that
    this command did not make; without it such an output is refused before any work."""
    parser.add_argument(
        "--force", action="store_true",
        help=f"replace {what} when it exists (a folder: even when this command did not make it); default: refuse",
    )  # fmt: skip
