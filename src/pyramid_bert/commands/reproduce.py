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
from pathlib import Path

from pyramid_bert.cli.flags import add_force_argument
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
        return run_all(args, setup.out / "report" / "report.md")
    return 0


# ------------------------------------------------------------------------------------ reproduce --all
#: Table 4 at CPU scale, as measured for the project (3 seeds; ~6 min per task and backbone on this 2-core CPU).
LRA_SETTINGS: tuple[str, ...] = (
    "--seeds", "0,1,2", "--train-size", "1000", "--test-size", "500", "--epochs", "3", "--lr", "2e-3",
    "--timing-batch", "32", "--timing-repeats", "3", "--pathfinder-n", "5000", "--quiet", "--out", "runs/lra",
)  # fmt: skip

#: (title, argv, Markdown section written by the step) in the order they run.
STEPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Table 5", ("ablate", "m"), "runs/ablate/report/m.md"),
    ("Table 6", ("ablate", "only-infer"), "runs/ablate/report/only-infer.md"),
    ("Table 7", ("ablate", "position"), "runs/ablate/report/position.md"),
    ("Figure 6", ("ablate", "schedules"), "runs/ablate/report/schedules.md"),
    ("Figure 1 (fine-tuned)", ("analyze", "redundancy", "--model", "ablate-dense", "--out",
                               "runs/analyze/redundancy-dense"), "runs/analyze/redundancy-dense/redundancy.md"),
    ("Figure 1 (pretrained)", ("analyze", "redundancy", "--model", "minilm-l6", "--out",
                               "runs/analyze/redundancy-pretrained"), "runs/analyze/redundancy-pretrained/redundancy.md"),
    ("Figures 4-5", ("analyze", "importance", "--model", "ablate-dense"), "runs/analyze/importance/importance.md"),
    ("Table 4 (image)", ("lra", "--task", "lra-image", *LRA_SETTINGS), ""),
    ("Table 4 (Pathfinder-32)", ("lra", "--task", "lra-pathfinder32", *LRA_SETTINGS), ""),
    ("Table 4 (bytes)", ("lra", "--task", "lra-bytes", *LRA_SETTINGS), ""),
)  # fmt: skip


def run_all(args: argparse.Namespace, main_report: Path) -> int:
    """Run every step of :data:`STEPS` after the main job and write ``<main report folder>/../report-all.md``."""
    from pyramid_bert import cli
    from pyramid_bert.io import atomic_write_text

    sections = [f"# pyramid-bert: every table and figure\n\nMain job (Tables 1-3 layout): `{main_report}`\n"]
    failed = 0
    synthetic = bool(getattr(args, "synthetic", False))
    for title, argv, section in STEPS:
        if synthetic and argv[0] != "ablate":
            continue  # the pipeline check: only the ablations have a synthetic trial function
        extra = ("--no-progress",) if args.no_progress and argv[0] != "lra" else ()
        extra += ("--synthetic",) if synthetic else ()
        extra += ("--force",) if getattr(args, "force", False) else ()  # the steps' outputs follow the same rule
        started = time.perf_counter()
        print(f"reproduce --all: {title}: pyramid-bert {' '.join(argv)}", file=sys.stderr)
        code = cli.main([*argv, *extra])
        minutes = (time.perf_counter() - started) / 60
        failed += code != 0
        sections.append(f"\n<!-- {title}: pyramid-bert {' '.join(argv)} ({minutes:.1f} min, exit {code}) -->\n")
        path = Path(section) if section else None
        if path is not None and path.is_file():
            sections.append(path.read_text())
        elif argv[0] == "lra":
            sections += [p.read_text() for p in sorted(Path("runs/lra").glob(f"{argv[2]}_*.md"))]
    if not synthetic and any(Path("runs/lra").glob("*.json")):
        from pyramid_bert.lra.summary import summarise

        sections.append("\n## Table 4 over seeds (every LRA task)\n\n" + summarise([Path("runs/lra")]) + "\n")
    target = main_report.parent.parent / "report-all.md"  # checked before the main job (reproduce --force)
    atomic_write_text(target, "\n".join(sections))
    print(f"reproduce --all: {len(STEPS)} steps ({failed} failed); one report: {target}")
    return 1 if failed else 0
