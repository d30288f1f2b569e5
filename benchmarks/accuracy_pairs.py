"""The accuracy study's goal check: each configuration against dense and against EACH baseline of its group.

    python benchmarks/accuracy_pairs.py benchmarks/accuracy_study/trials.jsonl [--out benchmarks/accuracy_study/pairs.md]
    python benchmarks/accuracy_pairs.py STUDY/trials.jsonl --pairs "CS+:CS,CS+KD:CS+"   # named contrasts only
                                                                 # (NAME finds NAME@GROUP in each group)

``pyramid-bert report trials.jsonl --variants`` compares each configuration with dense and with the best baseline
on dev; the goal of issue 24 names two baselines (Attention-select and Average-pool), so this table gives every
paired test difference (x 100, mean over seeds [95% t interval]) against dense and against each baseline of the
same group (``NAME@GROUP``), Holm-corrected within the group (family size stated), with each row's measured speedup
(separate timing pass) beside it. With ``--pairs A:B,...`` it gives instead the named differences A - B of each
task / group (the contrasts a study was designed for), Holm-corrected over those pairs within the task.
"""

from __future__ import annotations

import argparse

from pyramid_bert.io import atomic_write_text
from pyramid_bert.report.aggregate import apply_speed_pass
from pyramid_bert.report.stats import format_difference, holm, paired_difference
from pyramid_bert.report.variants import VariantTable, variant_tables
from pyramid_bert.sweep.store import open_existing
from pyramid_bert.sweep.store_export import store_from_export


def group_markdown(table: VariantTable) -> str:
    dense = next(row for row in table.rows if row.method == "dense")
    baselines = [row for row in table.rows if row.is_baseline]
    others = [row for row in table.rows if row.method != "dense"]
    comparisons = [(row, other) for row in others for other in (dense, *baselines) if other is not row]
    adjusted = holm([paired_difference(row.test, other.test) for row, other in comparisons])
    header = ["configuration", "seeds", "sorted speedup", "vs dense", *(f"vs {b.name}" for b in baselines)]
    lines = [f"### {table.task}, {table.group}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells = {(row.name, other.name): diff for (row, other), diff in zip(comparisons, adjusted, strict=True)}
    for row in others:
        speed = row.speedup("sorted")
        line = [row.name, str(len(row.test)), "-" if speed is None else f"{speed:.2f}X"]
        line += [format_difference(cells.get((row.name, other.name)), scale=100.0) or "" for other in (dense, *baselines)]
        lines.append("| " + " | ".join(line) + " |")
    lines += ["", f"\\* significant at 95% after Holm's correction over this group's {len(comparisons)} comparisons.", ""]
    return "\n".join(lines)


def pairs_markdown(table: VariantTable, pairs: list[tuple[str, str]]) -> str:
    """The differences ``a - b`` (x 100) of ``table`` for each named pair both of whose rows it has, Holm-corrected
    (a name ``A`` is also found as ``A@GROUP`` in a group's table); "" when it has none of them."""
    rows = {row.name: row for row in table.rows}
    named = [tuple(name if name in rows else f"{name}@{table.group}" for name in pair) for pair in pairs]
    present = [(a, b) for a, b in named if a in rows and b in rows]
    if not present:
        return ""
    adjusted = holm([paired_difference(rows[a].test, rows[b].test) for a, b in present])
    title = table.task if table.group is None else f"{table.task}, {table.group}"
    lines = [f"### {title}", "", "| difference | seeds | test, x 100 [95% CI] |", "|---|---|---|"]
    for (a, b), diff in zip(present, adjusted, strict=True):
        lines.append(f"| {a} - {b} | {min(len(rows[a].test), len(rows[b].test))} | {format_difference(diff, scale=100.0)} |")
    lines += ["", f"\\* significant at 95% after Holm's correction over these {len(present)} differences.", ""]
    return "\n".join(lines)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``"A:B,C:D"`` -> ``[("A", "B"), ("C", "D")]``; SystemExit naming --pairs on a malformed entry."""
    pairs = [tuple(item.split(":")) for item in text.split(",") if item]
    if not pairs or any(len(pair) != 2 or not all(pair) for pair in pairs):
        raise SystemExit(f"--pairs: expected A:B[,C:D...] of configuration names, got {text!r}")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="trials export of the study (pyramid-bert report STORE --export FILE)")
    parser.add_argument("--out", help="also write the tables here")
    parser.add_argument("--pairs", help="A:B,... : only these differences A - B of each task or group")
    args = parser.parse_args()
    pairs = parse_pairs(args.pairs) if args.pairs else None
    with store_from_export(args.export) as store_path, open_existing(store_path) as store:
        tables = variant_tables(apply_speed_pass(store.records(), store.speeds()))
    if pairs:
        text = "\n".join(markdown for table in tables if (markdown := pairs_markdown(table, pairs)))
    else:
        text = "\n".join(group_markdown(table) for table in tables)
    if args.out:
        atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
