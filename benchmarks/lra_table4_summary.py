"""Summarise ``pyramid-bert lra`` / ``benchmarks/lra_table4.py`` result files into one Table-4-style markdown table.

Reads every ``*.json`` under the given folders (one file per task, backbone and seed; a run may hold only some of
the methods) and prints, per backbone and method, the test accuracy's mean ± std over seeds for each task with the
paper's number beside it, then the measured speedups (:mod:`pyramid_bert.lra.summary`):

    python benchmarks/lra_table4_summary.py runs/lra
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyramid_bert.lra.summary import summarise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="result .json files or folders holding them")
    print(summarise(parser.parse_args(argv).paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
