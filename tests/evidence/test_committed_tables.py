"""The committed tables are what the committed per-trial data rebuilds: no number in benchmarks/ drifts from its data.

Each folder under benchmarks/ (at any depth) that holds a ``trials.jsonl`` export (``pyramid-bert report STORE --export``) also
holds the report rebuilt from it (``report/report.md``, or ``report/variants.md`` for a study of named configurations,
``report --variants``); rebuilding it here must give the same tables to the digit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramid_bert import cli

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
EXPORTS = sorted(BENCHMARKS.glob("**/trials.jsonl"))


@pytest.mark.parametrize("export", EXPORTS, ids=lambda path: str(path.parent.relative_to(BENCHMARKS)))
def test_the_committed_tables_are_rebuilt_from_the_committed_trials(export, tmp_path):
    out = tmp_path / "report"
    committed = export.parent / "report"
    if (committed / "variants.md").exists():  # a study of named configurations: `report --variants`
        assert cli.main(["report", str(export), "--variants", "--out", str(out)]) == 0
        for name in ("variants.md", "variants.csv"):
            assert (out / name).read_text() == (committed / name).read_text(), name
        return
    assert cli.main(["report", str(export), "--out", str(out)]) == 0
    for table in sorted((committed / "tables").glob("*.csv")):
        assert (out / "tables" / table.name).read_text() == table.read_text(), table.name
    rebuilt, kept = (out / "report.md").read_text(), (committed / "report.md").read_text()
    assert rebuilt.split("\n", 3)[3] == kept.split("\n", 3)[3]  # all but the lines naming where it was written


def test_there_is_committed_evidence():
    assert EXPORTS, "benchmarks/*/trials.jsonl: the per-trial data behind the committed tables"
