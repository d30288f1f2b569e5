"""``pyramid-bert report RESULTS_DB``: tables (Markdown, CSV) and plots rebuilt from a results store alone, or from
a trials export (``pyramid-bert report --export trials.jsonl STORE``; ``pyramid-bert report trials.jsonl``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pyramid_bert.cli.flags import add_force_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="rebuild tables and plots from a sweep's results store",
        description=__doc__,
    )
    parser.add_argument(
        "results_db", metavar="RESULTS_DB",
        help="a results.sqlite written by sweep or reproduce, or a trials export (.jsonl) of one",
    )  # fmt: skip
    parser.add_argument(
        "--export", metavar="FILE.jsonl",
        help="instead: write every trial of RESULTS_DB to FILE.jsonl (one line each), a file small enough to commit",
    )  # fmt: skip
    parser.add_argument("--out", help="output folder (default: report/ beside RESULTS_DB)")
    parser.add_argument(
        "--no-dense-anchor", action="store_true", help="do not put the dense model (1.0X) on each method's frontier"
    )
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    add_force_argument(parser, "--out")
    parser.add_argument(
        "--speed-axis",
        help="x-axis speedup: sorted (vs the dense model on length-sorted, dynamically padded batches) or padded "
        "(both padded to N, the paper's protocol); default sorted when every trial measured it, else padded",
    )
    parser.add_argument(
        "--variants", action="store_true",
        help="instead: one row per configuration (named variants of a study such as `sweep --preset selection`), "
        "test metric with 95%% intervals over seeds and paired differences to dense and to the best baseline",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run_variants(store_path: Path, out: Path) -> int:
    """Print the per-configuration tables and write ``variants.md`` / ``variants.csv`` into ``out``."""
    from pyramid_bert.io import atomic_write_text, mark_output_dir
    from pyramid_bert.report.aggregate import apply_speed_pass
    from pyramid_bert.report.variants import variant_tables, variants_csv, variants_markdown
    from pyramid_bert.sweep.store import open_existing

    with open_existing(store_path) as store:
        tables = variant_tables(apply_speed_pass(store.records(), store.speeds()))
    markdown = variants_markdown(tables)
    mark_output_dir(out, "report")
    atomic_write_text(out / "variants.md", markdown)
    atomic_write_text(out / "variants.csv", variants_csv(tables))
    print(markdown)
    print(f"tables: {(out / 'variants.md').resolve()}, {(out / 'variants.csv').resolve()}")
    return 0


def print_report_summary(
    report, *, targets: tuple[tuple[str, float], ...] = (("speedup", 3.0), ("speedup", 1.5))
) -> None:  # noqa: ANN001
    """Print the results section, the chosen tables of the paper's layout, and where the files are."""
    from pyramid_bert.report.tables import TableTarget

    if report.results:
        print(f"\nResults at 1.5X, 2X and 3X measured speedup\n\n{report.results}")
    for axis, target in targets:
        print(f"\n{TableTarget(axis, target).title} ({report.speed_axis} batches)\n")
        print(report.table(axis, target))
    print(f"\nreport: {report.markdown_path.resolve()}")
    if report.plot_paths:
        print("plots: " + ", ".join(str(path.resolve()) for path in report.plot_paths))
    print(f"tables (CSV): {(report.markdown_path.parent / 'tables').resolve()}")
    if report.trials_failed:
        print(f"note: {report.trials_failed} trials failed; the report lists them and marks their cells with †")


def run(args: argparse.Namespace) -> int:
    from pyramid_bert.io import check_output_dir, check_output_file
    from pyramid_bert.sweep.store_export import export_store, store_from_export

    source = Path(args.results_db)
    if args.export:
        check_output_file(args.export, "--export", force=args.force)
        print(f"trials of {source}: {export_store(source, args.export)}")
        return 0
    out = check_output_dir(args.out or source.parent / "report", "--out", kind="report", force=args.force)
    if source.suffix != ".jsonl":
        return _report(source, out, args, source)  # opened read-only; anything but a sweep's results store is refused
    with store_from_export(source) as store_path:
        return _report(store_path, out, args, source)


def _report(store_path: Path, out: Path, args: argparse.Namespace, source: Path) -> int:
    from pyramid_bert.report.build import build_report

    if args.variants:
        return run_variants(store_path, out)
    report = build_report(
        store_path, out, dense_anchor=not args.no_dense_anchor, plots=not args.no_plots, speed_axis=args.speed_axis,
        source=source,
    )  # fmt: skip
    print_report_summary(report)
    return 0
