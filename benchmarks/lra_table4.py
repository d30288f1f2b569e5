"""The paper's Table 4 at CPU scale: Big Bird and Performer on an LRA task, token selection at the input layer.

Same options as ``pyramid-bert lra`` (see ``--help``). Run one task at a time, politely:

    nice -n 19 /work/venv/bin/python benchmarks/lra_table4.py --task lra-image --out runs/lra
"""

from __future__ import annotations

import argparse
import sys

from pyramid_bert.commands.lra import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
