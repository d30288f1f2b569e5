"""The compress example of docs/guide.md is committed data: its configuration table and its choice are what
``benchmarks/compress_example/compress.json`` (written by that run) rebuilds, and the guide quotes that table."""

from __future__ import annotations

import json
from pathlib import Path

from pyramid_bert.compress.choose import choose
from pyramid_bert.compress.output import configuration_table
from pyramid_bert.compress.run import CompressResult

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "benchmarks" / "compress_example"


def committed_result() -> tuple[CompressResult, dict]:
    data = json.loads((EXAMPLE / "compress.json").read_text())
    result = CompressResult(Path("reviews-fast"), data["rows"], data["dense"], data["chosen"], data["reason"])
    return result, data


def test_the_committed_report_holds_the_table_its_data_rebuilds():
    result, data = committed_result()
    table = configuration_table(result, data["metric"])
    assert table.strip() in (EXAMPLE / "report.md").read_text()
    assert table.strip() in (ROOT / "docs" / "guide.md").read_text(), "docs/guide.md quotes the example's table"


def test_the_committed_choice_meets_the_goal_it_was_given():
    result, data = committed_result()
    target = data["settings"]["target_speedup"]
    chosen = result.chosen_row
    assert chosen["speedup"] >= target
    best_on_dev = choose(result.rows, dense_dev=result.dense["dev"], target_speedup=target).index
    # the rule takes the slowest configuration not significantly below the best on dev (its intervals need the dev
    # predictions, not in the JSON): never one faster than the best on dev
    assert chosen["speedup"] <= result.rows[best_on_dev]["speedup"]
