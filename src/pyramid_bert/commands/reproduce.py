"""``pyramid-bert reproduce``: the paper's experiments, end to end, on this machine.

Plans a sweep (default preset ``quick``: minilm-l6 on the offline rt-polarity corpus, a few schedules
from about 1.5X to 4X predicted speedup, all six methods and dense, small subsets, one seed), runs it
into ``OUT/results.sqlite`` with a progress bar and ETA, builds ``OUT/report/report.md`` with CSV tables
and plots, and prints the tables at 3X and 1.5X speedup. ``--preset paper`` is the full grid with 20
seeds (meant for GPUs and Ray clusters: ``--executor ray --address auto``). Killed, it continues with
``--resume``.
"""

from __future__ import annotations

import argparse
import sys
import time

from pyramid_bert.commands.sweep import add_sweep_arguments, plan_from_args, run_setup


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run the paper's sweep (quick preset by default), then write and print its tables and plots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_sweep_arguments(parser, default_out="runs/reproduce")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.commands.report import print_report_summary
    from pyramid_bert.report.build import build_report

    started = time.perf_counter()
    setup = plan_from_args(args)
    settings = setup.settings
    print(
        f"reproduce: preset {settings['preset']}, model {settings['model']}, tasks {', '.join(settings['tasks'])}, "
        f"{settings['seeds']} seed(s): {len(setup.trials)} trials into {setup.out}",
        file=sys.stderr,
    )
    summary = run_setup(setup, args)
    report = build_report(setup.store_path, setup.out / "report")
    print_report_summary(report)
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nreproduce: {summary.ran} trials run ({summary.failed} failed), {summary.already_done} resumed, "
        f"wall time {minutes:.1f} min"
    )
    return 0
