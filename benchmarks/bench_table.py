"""Rebuild a speed table from the CSVs ``pyramid-bert bench --task ... --csv`` wrote (no model, no timing): the
table bench itself prints for real inputs (:func:`pyramid_bert.measure.bench.format_split_table`), rows in the order
of the files and of their lines.

    python benchmarks/bench_table.py benchmarks/families/minilm-l6_fixed.csv benchmarks/families/bert-base_fixed.csv
"""

from __future__ import annotations

import argparse

from pyramid_bert.io import read_csv_rows
from pyramid_bert.measure.bench import SplitBenchRow, format_split_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="+", help="bench CSVs, in the table's order")
    rows = [SplitBenchRow.from_csv(row) for row in read_csv_rows(*parser.parse_args().csv)]
    print(format_split_table(rows))


if __name__ == "__main__":
    main()
