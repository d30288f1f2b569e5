"""Rebuild the tables of ``benchmarks/analyses.md`` from the per-seed CSVs the analyses wrote (no model, no timing).

    python benchmarks/analyses_tables.py m            # Table 5: m in {1, ceil(0.5k), k-1}
    python benchmarks/analyses_tables.py only-infer   # Table 6: selection at inference only vs adapted
    python benchmarks/analyses_tables.py position     # Table 7: selection after attention (middle) vs after the FFN
    python benchmarks/analyses_tables.py redundancy   # Figure 1: similarity and DBSCAN clusters per encoder

Tables 5-7 read ``benchmarks/analyses/{m,only-infer,position}.csv`` (written by ``pyramid-bert ablate``): the means
and 95% t intervals are recomputed from the per-seed columns ``test_seed*``, and every paired difference from the
same columns, with Holm's correction over the table's differences (``*``: significant after it; the raw intervals
are printed). Figure 1 reads ``redundancy-dense/redundancy.csv`` and ``redundancy-pretrained/redundancy.csv``
(written by ``pyramid-bert analyze redundancy``; row 0 is the embeddings, row j encoder j).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pyramid_bert.io import read_csv_rows
from pyramid_bert.report.stats import PairedDifference, format_difference, holm, mean_ci, paired_difference

ANALYSES = Path(__file__).resolve().parent / "analyses"


def read_rows(path: Path) -> list[dict[str, str]]:
    return read_csv_rows(path)


def per_seed(row: dict[str, str]) -> dict[int, float]:
    """Seed -> test accuracy x 100 from the ``test_seed*`` columns (empty cells skipped)."""
    return {int(name.removeprefix("test_seed")): float(value) for name, value in row.items()
            if name.startswith("test_seed") and value}  # fmt: skip


def mean_text(row: dict[str, str]) -> str:
    summary = mean_ci(list(per_seed(row).values()))
    return (
        f"{summary.mean:.1f}" if summary.low is None else f"{summary.mean:.1f} [{summary.low:.1f}, {summary.high:.1f}]"
    )


def by_schedule(rows: list[dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    """schedule -> variant -> row, in the CSV's order of schedules."""
    table: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        table.setdefault(row["schedule"], {})[row["variant"]] = row
    return table


def schedule_text(row: dict[str, str]) -> str:
    return f"{row['schedule']}, {row['lengths']}"


def predicted(row: dict[str, str]) -> str:
    return f"{float(row['predicted_speedup']):.2f}X"


def differences(pairs: list[tuple[dict[str, str], dict[str, str]]]) -> list[str]:
    """``a - b`` for each pair of rows, Holm-corrected over the list, formatted."""
    raw: list[PairedDifference | None] = [paired_difference(per_seed(a), per_seed(b)) for a, b in pairs]
    return [format_difference(difference) for difference in holm(raw)]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table_m(folder: Path) -> str:
    """Table 5: each m's test accuracy and its paired difference to m = 1, per schedule."""
    schedules = by_schedule(read_rows(folder / "m.csv"))
    pairs = [(variants[other], variants["1"]) for variants in schedules.values() for other in ("ceil(0.5k)", "k-1")]
    diffs = differences(pairs)
    rows = []
    for index, variants in enumerate(schedules.values()):
        first = variants["1"]
        p, u = re.fullmatch(r"p=(\S+) u=(\S+)", first["schedule"]).groups()
        rows.append([f"({u}, {p}), {first['lengths']}", predicted(first),
                     *(mean_text(variants[m]) for m in ("1", "ceil(0.5k)", "k-1")), *diffs[2 * index:2 * index + 2]])  # fmt: skip
    header = ["(prune_upto, p), lengths", "predicted", "m = 1", "ceil(0.5k)", "k-1", "ceil(0.5k) - (m = 1)",
              "(k-1) - (m = 1)"]  # fmt: skip
    return markdown(header, rows) + f"\n\n{footnote(len(pairs))}"


def table_pair(folder: Path, name: str, first: str, second: str, header: list[str]) -> str:
    """Tables 6 and 7: two variants per schedule and ``second - first``."""
    schedules = by_schedule(read_rows(folder / f"{name}.csv"))
    diffs = differences([(variants[second], variants[first]) for variants in schedules.values()])
    rows = [[schedule_text(variants[first]), *(f"{mean_text(variants[v])}, {predicted(variants[v])}" for v in (first, second)),
             diff] for variants, diff in zip(schedules.values(), diffs, strict=True)]  # fmt: skip
    return markdown(header, rows) + f"\n\n{footnote(len(rows))}"


def footnote(family: int) -> str:
    return (f"Test accuracy x 100, mean [95% t interval] over seeds; differences paired over seeds with raw 95% "
            f"intervals; * = significant after Holm's correction over the table's {family} differences.")  # fmt: skip


def table_redundancy(folder: Path) -> str:
    """Figure 1: per encoder, fine-tuned / pretrained."""
    tuned = read_rows(folder / "redundancy-dense" / "redundancy.csv")[1:]
    pretrained = read_rows(folder / "redundancy-pretrained" / "redundancy.csv")[1:]
    columns = (("cls_cosine_mean", "{:.2f}"), ("pair_cosine_mean", "{:.2f}"), ("nn_cosine_distance_q50", "{:.2f}"),
               ("cluster_share_paper_mean", "{:.0%}"), ("clusters_quantile_mean", "{:.1f}"))  # fmt: skip
    rows = [[a["layer"], *(f"{fmt.format(float(a[c]) + 0.0)} / {fmt.format(float(b[c]) + 0.0)}" for c, fmt in columns)]
            for a, b in zip(tuned, pretrained, strict=True)]  # fmt: skip
    header = ["encoder", "cos to CLS (fine-tuned / pretrained)", "pairwise cos", "NN cosine dissimilarity (median)",
              "clusters per token at eps 0.2", "clusters per input, eps q0.5"]  # fmt: skip
    return markdown(header, rows)


TABLES = {
    "m": table_m,
    "only-infer": lambda folder: table_pair(
        folder,
        "only-infer",
        "inference only",
        "fine-tuning + inference",
        [
            "schedule, lengths",
            "inference only: test, predicted",
            "adaptation + inference: test, predicted",
            "paired difference",
        ],
    ),
    "position": lambda folder: table_pair(
        folder,
        "position",
        "middle",
        "end",
        ["schedule, lengths", "middle: test, predicted", "end: test, predicted", "end - middle"],
    ),
    "redundancy": table_redundancy,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--dir", type=Path, default=ANALYSES, help="the folder of the CSVs (default: %(default)s)")
    args = parser.parse_args()
    print(TABLES[args.table](args.dir))


if __name__ == "__main__":
    main()
