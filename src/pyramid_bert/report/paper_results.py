"""The paper's GLUE numbers (BERT-base, dev sets, mean of 20 trials), to show beside ours.

Copied from the paper's Tables 1-3 (= 12, 14, 15) and transcribed from Tables 11, 13 and 16 of its
appendix; one cell that the source text leaves unreadable (Table 13, Average-pool on SST-2) is None.
Values are percentages: F1 for MRPC and QQP, Spearman for STS-B, Matthews correlation for CoLA,
accuracy elsewhere. A dash in the paper (no configuration reached the target) is None.
"""

from __future__ import annotations

#: Column order of the paper's tables.
COLUMNS = ("1st-I", "1st", "Rand", "Pool", "Att", "CS-k-1", "CS-opt", "dense")

#: Our task name -> the paper's column name, for GLUE tasks only. rt-polarity is the source corpus of
#: SST-2 but not the same task (other splits, whole-review sentences), so it has no paper numbers.
PAPER_TASK_NAMES = {
    "stsb": "STS-B",
    "mrpc": "MRPC",
    "sst2": "SST-2",
    "qnli": "QNLI",
    "cola": "CoLA",
    "rte": "RTE",
    "mnli": "MNLI-m",
    "mnli-mm": "MNLI-mm",
    "qqp": "QQP",
}

_TASK_ORDER = ("STS-B", "MRPC", "SST-2", "QNLI", "CoLA", "RTE", "MNLI-m", "MNLI-mm", "QQP")
_DENSE = (87.9, 87.3, 92.4, 90.9, 53.3, 65.8, 84.0, 84.6, 87.5)
_ = None

# Rows: methods in COLUMNS order without dense; columns: tasks in _TASK_ORDER.
_BY_METHOD: dict[tuple[str, float], tuple[tuple[float | None, ...], ...]] = {
    ("speedup", 3.5): (  # Table 11
        (80.6, _, _, 80.5, 47.9, _, 75.9, 74.5, _),
        (80.3, _, _, 80.8, 47.9, _, 75.5, 74.7, _),
        (85.7, _, _, 86.2, 48.9, _, 80.2, 78.1, _),
        (77.6, _, _, 84.0, 0.0, _, 73.3, 74.7, _),
        (85.3, _, _, 86.7, 51.0, _, 81.1, 81.4, _),
        (86.6, _, _, 87.5, 51.1, _, 82.2, 82.4, _),
        (86.6, _, _, 87.5, 52.7, _, 82.2, 82.4, _),
    ),
    ("speedup", 3.0): (  # Table 1 / 12
        (86.4, 81.4, 83.8, 84.8, 49.7, 63.5, 77.8, 75.9, 80.8),
        (86.4, 80.9, 84.4, 84.4, 49.7, 63.5, 76.7, 75.6, 80.4),
        (86.8, 83.2, 85.6, 86.4, 49.5, 62.1, 81.4, 78.7, 87.0),
        (81.6, 83.9, 85.2, 84.1, 3.0, 59.2, 75.4, 76.7, 79.4),
        (87.0, 84.6, 86.0, 86.8, 51.1, 63.4, 82.5, 82.7, 87.3),
        (87.0, 86.2, 87.3, 87.8, 51.7, 63.7, 82.4, 82.6, 87.3),
        (87.0, 86.9, 89.6, 87.8, 52.8, 63.7, 82.5, 82.7, 87.3),
    ),
    ("speedup", 2.0): (  # Table 13
        (87.8, 82.2, 91.8, 90.4, 51.9, 65.2, 81.9, 82.2, 85.4),
        (87.8, 82.1, 91.2, 90.4, 51.9, 64.9, 81.9, 82.2, 84.9),
        (87.8, 86.6, 90.0, 88.9, 52.6, 64.9, 83.6, 80.3, 87.2),
        (87.8, 85.8, _, 86.3, 11.2, 60.2, 76.3, 82.9, 82.1),
        (87.8, 86.8, 91.0, 90.4, 53.2, 65.7, 83.6, 84.1, 87.3),
        (87.6, 86.6, 90.1, 89.4, 53.2, 64.1, 83.9, 84.3, 87.5),
        (87.9, 87.2, 92.4, 89.4, 53.2, 64.9, 83.9, 84.3, 87.5),
    ),
    ("speedup", 1.5): (  # Table 2 / 14
        (87.9, 86.8, 92.1, 90.8, 53.0, 65.6, 84.0, 84.1, 87.1),
        (87.9, 86.4, 91.5, 90.8, 52.7, 65.2, 83.8, 84.0, 86.9),
        (87.8, 87.2, 91.9, 90.8, 53.1, 65.7, 83.9, 83.9, 87.4),
        (87.8, 87.0, 90.3, 90.2, 25.6, 61.5, 80.9, 84.0, 85.7),
        (87.9, 87.1, 92.3, 90.7, 53.2, 65.7, 84.0, 84.5, 87.4),
        (87.7, 86.9, 92.4, 90.9, 53.3, 65.4, 84.0, 84.6, 87.5),
        (87.9, 87.3, 92.4, 90.9, 53.3, 65.6, 84.0, 84.6, 87.5),
    ),
    ("space", 0.7): (  # Table 3 / 15
        (85.3, 81.3, 83.3, 84.6, 49.0, 62.1, 76.9, 74.9, 80.6),
        (85.1, 81.5, 84.6, 84.3, 49.0, 62.0, 76.3, 74.5, 80.0),
        (85.6, 83.3, 84.9, 85.1, 48.4, 61.8, 79.0, 79.3, 86.6),
        (78.7, 83.1, 85.1, 84.0, 0.0, 59.8, 75.2, 76.3, 82.9),
        (85.4, 84.3, 87.2, 86.4, 50.9, 62.7, 80.5, 80.7, 87.0),
        (86.5, 86.0, 87.6, 86.6, 51.0, 63.6, 80.9, 81.6, 87.2),
        (86.7, 86.6, 87.7, 86.5, 52.3, 63.6, 81.0, 81.8, 87.3),
    ),
    ("space", 0.3): (  # Table 16
        (87.9, 87.2, 91.8, 90.8, 53.0, 65.2, 84.0, 84.3, 87.1),
        (87.9, 87.2, 91.3, 90.9, 53.0, 65.2, 84.0, 84.3, 87.4),
        (87.8, 87.1, 92.1, 90.9, 53.1, 65.7, 83.9, 84.4, 87.4),
        (87.8, 87.2, 91.7, 89.2, 44.6, 64.1, 82.7, 83.7, 86.2),
        (87.9, 87.1, 92.3, 90.7, 53.2, 65.7, 83.9, 84.4, 87.5),
        (87.7, 87.3, 92.4, 90.9, 53.2, 65.5, 84.0, 84.3, 87.5),
        (87.9, 87.3, 92.4, 90.9, 53.2, 65.6, 84.0, 84.3, 87.5),
    ),
}

#: (kind, target) -> paper task name -> column -> value (percent) or None.
PAPER_TABLES: dict[tuple[str, float], dict[str, dict[str, float | None]]] = {
    target: {
        task: {**{column: rows[m][t] for m, column in enumerate(COLUMNS[:-1])}, "dense": _DENSE[t]}
        for t, task in enumerate(_TASK_ORDER)
    }
    for target, rows in _BY_METHOD.items()
}

#: Where each table is in the paper.
PAPER_TABLE_NAMES = {
    ("speedup", 3.5): "Table 11",
    ("speedup", 3.0): "Table 1",
    ("speedup", 2.0): "Table 13",
    ("speedup", 1.5): "Table 2",
    ("space", 0.7): "Table 3",
    ("space", 0.3): "Table 16",
}


def paper_row(task: str, kind: str, target: float) -> dict[str, float | None] | None:
    """The paper's row for our ``task`` at a target, or None when the paper has no such task/table."""
    paper_name = PAPER_TASK_NAMES.get(task)
    table = PAPER_TABLES.get((kind, float(target)))
    if paper_name is None or table is None:
        return None
    return table[paper_name]
