"""``pyramid-bert reproduce``: the paper's experiments, end to end, on this machine.

Plans a sweep (default preset ``default``: minilm-l6 on the offline rt-polarity corpus, four schedules
per method from about 1.4X to 4.4X predicted speedup, all six methods and dense, 3 seeds, the warm
protocol: dense fine-tuned once per seed, every pyramid configuration adapted from it), runs it into
``OUT/results.sqlite`` on one worker process per core with a progress bar naming the running trials,
builds ``OUT/report/report.md`` with CSV tables and plots, and prints every method at 1.5X, 2X and 3X
measured speedup (mean and 95% interval over seeds, paired differences to dense and to the best
baseline, which are significant) and the paper-layout tables at 3X and 1.5X. ``--preset smoke`` is the
minutes-long pipeline check. ``--preset paper`` is the full grid with 20
seeds (meant for GPUs and Ray clusters: ``--executor ray --address auto``). Killed, it continues with
``--resume``.
"""

from __future__ import annotations

import argparse
import sys
import time

from pyramid_bert.commands.output_args import add_force_argument
from pyramid_bert.commands.sweep import add_sweep_arguments, plan_from_args, run_setup


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run the paper's comparison (default preset: about 55 min on 2 cores), then print its tables",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_sweep_arguments(parser, default_out="runs/reproduce")
    parser.add_argument(
        "--all",
        action="store_true",
        help="then every other table and figure (ablations, analyses, LRA) and one report-all.md",
    )
    add_force_argument(parser, "OUT/report, OUT/report-all.md (and, with --all, the outputs of every step)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.commands.report import print_report_summary
    from pyramid_bert.io import check_output_dir, check_output_file
    from pyramid_bert.report.build import build_report

    started = time.perf_counter()
    setup = plan_from_args(args)
    check_output_dir(setup.out / "report", "--out", kind="report", force=args.force)
    if getattr(args, "all", False):
        check_output_file(setup.out / "report-all.md", "--out", force=args.force)
    settings = setup.settings
    print(
        f"reproduce: preset {settings['preset']}, model {settings['model']}, tasks {', '.join(settings['tasks'])}, "
        f"{settings['seeds']} seed(s), protocol {settings['protocol']}: {len(setup.trials)} trials into {setup.out}",
        file=sys.stderr,
    )
    if setup.estimated_minutes is not None and not settings["synthetic"]:
        print(
            f"reproduce: about {setup.estimated_minutes:.0f} min of trials for minilm-l6 on a 2-core CPU like the one "
            "measured (pyramid_bert.sweep.budget); --resume continues an interrupted run",
            file=sys.stderr,
        )
    summary = run_setup(setup, args)
    if settings.get("variants"):  # a study of named configurations: one row per configuration
        from pyramid_bert.commands.report import run_variants

        run_variants(setup.store_path, setup.out / "report")
    else:
        print_report_summary(build_report(setup.store_path, setup.out / "report"))
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nreproduce: {summary.ran} trials run ({summary.failed} failed), {summary.already_done} resumed, "
        f"wall time {minutes:.1f} min"
    )
    if getattr(args, "all", False):
        from pyramid_bert.commands.reproduce_all import run_all

        return run_all(args, setup.out / "report" / "report.md")
    return 0
