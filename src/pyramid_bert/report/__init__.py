"""Reports: Pareto frontiers, interpolated tables like the paper's, plots; built from a results store.

Knows nothing of how results were made: it reads :class:`pyramid_bert.sweep.store.ResultsStore` rows.
"""

from __future__ import annotations

from pyramid_bert.report.aggregate import METHOD_COLUMNS, aggregate
from pyramid_bert.report.build import Report, build_report
from pyramid_bert.report.frontier import locate, pareto_frontier, value_at
from pyramid_bert.report.tables import TABLE_TARGETS, TableTarget

__all__ = [
    "METHOD_COLUMNS",
    "TABLE_TARGETS",
    "Report",
    "TableTarget",
    "aggregate",
    "build_report",
    "locate",
    "pareto_frontier",
    "value_at",
]
