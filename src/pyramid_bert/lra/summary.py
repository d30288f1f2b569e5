"""Table 4 over seeds: per (backbone, task, method), the mean and standard deviation of test accuracy over runs.

Reads result files of :func:`pyramid_bert.lra.experiment.run_lra_comparison` (``pyramid-bert lra`` writes one per
task, backbone and seed: ``<task>_<backbone>_seed<S>.json``) and writes markdown with the paper's number beside
ours. A run may hold only some of the methods.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pyramid_bert.data.lra import LRA_TASK_NAMES
from pyramid_bert.lra.experiment import METHOD_TITLES, PAPER_TABLE4, TABLE4_METHODS
from pyramid_bert.report.stats import PairedDifference, format_difference, holm, paired_difference

Cell = list[dict[str, object]]


def load_results(paths: Iterable[Path]) -> list[dict[str, object]]:
    """Every result JSON under ``paths`` (files, or folders searched for ``*.json``), sorted by path."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return [json.loads(file.read_text()) for file in files]


def group_cells(results: Iterable[dict[str, object]]) -> dict[tuple[str, str, str], Cell]:
    """(backbone, task, method label) -> that cell's rows, one per run, each with its run's ``seed``."""
    cells: dict[tuple[str, str, str], Cell] = defaultdict(list)
    for result in results:
        config = result["config"]
        for row in result["rows"]:
            cells[(config["backbone"], result["task"], row["label"])].append({**row, "seed": config["seed"]})
    return cells


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def format_cell(rows: Cell) -> str:
    """``mean ± std (n)`` of the rows' test accuracy in %, and ``one class i/n`` when i of the n models predicted
    a single class for every test example."""
    mean, std = mean_std([100 * float(row["accuracy"]) for row in rows])
    one_class = sum(float(row.get("majority_share", 0.0)) >= 1.0 for row in rows)
    return f"{mean:.1f} ± {std:.1f} ({len(rows)})" + (f" one class {one_class}/{len(rows)}" if one_class else "")


def format_table4(cells: dict[tuple[str, str, str], Cell]) -> str:
    """The paper's Table 4 layout: a row per backbone and method, a column per task; accuracy mean ± std (runs),
    the paper's number in brackets; then the measured speedups and the selection's share of the forward."""
    present = {task for _, task, _ in cells}
    tasks = [task for task in LRA_TASK_NAMES if task in present] + sorted(present - set(LRA_TASK_NAMES))

    def accuracy(backbone: str, task: str, label: str) -> str:
        rows = cells.get((backbone, task, label))
        paper = PAPER_TABLE4.get((backbone, task), {}).get(label)
        return "-" if not rows else f"{format_cell(rows)} [{'-' if paper is None else paper}]"

    differences = _paired_differences(cells, tasks)
    family = sum(difference is not None and difference.p_value is not None for difference in differences.values())
    return "\n".join([
        "Test accuracy %, mean ± std over seeds (number of seeds) [paper]:",
        "",
        *_method_rows(cells, tasks, accuracy),
        "",
        "Measured inference speedup over no pruning (median over seeds of each run's median), k kept tokens, and"
        " the selection's share of the pruned forward (median):",
        "",
        *_method_rows(cells, tasks, lambda backbone, task, label: _speed_entry(cells.get((backbone, task, label)))),
        "",
        "CS (m=1) minus each other method, test accuracy points paired on the seeds (same initial weights and"
        f" subsets), mean [raw 95% t interval] (* significant at 95% after Holm's correction over the table's {family}"
        " differences: the t test, or the exact sign-flip test when every seed gave the same difference):",
        "",
        *_method_rows(cells, tasks, lambda backbone, task, label: format_difference(
            differences.get((backbone, task, label)), missing="-")),
    ])  # fmt: skip


def _paired_differences(
    cells: dict[tuple[str, str, str], Cell], tasks: list[str]
) -> dict[tuple[str, str, str], PairedDifference | None]:
    """(backbone, task, method) -> ``CS (m=1) - method`` on the seeds both cells have (None where there is none),
    Holm-corrected over every difference of the table."""
    keys = [(backbone, task, label) for backbone in sorted({backbone for backbone, _, _ in cells})
            for task in tasks for label in TABLE4_METHODS]  # fmt: skip
    return dict(zip(keys, holm([_paired(cells, *key) for key in keys]), strict=True))


def _paired(cells: dict[tuple[str, str, str], Cell], backbone: str, task: str, label: str) -> PairedDifference | None:
    reference, other = cells.get((backbone, task, "cs_opt")), cells.get((backbone, task, label))
    if label == "cs_opt" or not reference or not other:
        return None
    by_seed = [{int(row["seed"]): 100 * float(row["accuracy"]) for row in rows} for rows in (reference, other)]
    return paired_difference(*by_seed)


def _method_rows(cells: dict[tuple[str, str, str], Cell], tasks: list[str], entry) -> list[str]:
    """A markdown table: a row per (backbone, method) that has any entry, a column per task, ``entry(backbone,
    task, label) -> str`` ("-" for none) in each cell."""
    lines = ["| backbone | method | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for backbone in sorted({backbone for backbone, _, _ in cells}):
        for label in TABLE4_METHODS:
            entries = [entry(backbone, task, label) for task in tasks]
            if any(text != "-" for text in entries):
                lines.append(f"| {backbone} | {METHOD_TITLES[label]} | " + " | ".join(entries) + " |")
    return lines


def _speed_entry(rows: Cell | None) -> str:
    if not rows:
        return "-"
    speedup = statistics.median(float(row["speedup_median"]) for row in rows)
    shares = [float(row["selection_share"]) for row in rows if "selection_share" in row]
    share = f", selection {100 * statistics.median(shares):.0f}%" if shares else ""
    return f"{speedup:.2f}X (k {rows[0]['keep']}{share})"


def summarise(paths: Iterable[Path]) -> str:
    """:func:`format_table4` of every result file under ``paths``."""
    return format_table4(group_cells(load_results(paths)))
