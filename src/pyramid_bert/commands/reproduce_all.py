"""``pyramid-bert reproduce --all``: after the main job, every other table and figure the project makes, in order,
and one report that gathers their Markdown sections.

The steps are ordinary commands (run in this process through :func:`pyramid_bert.cli.main`), so each can also be
run, and re-run, on its own: :data:`STEPS` is the documented sequence. The ablations resume from their shared
store (``runs/ablate``); the analyses run on the seed-0 dense model of that store. With ``--synthetic`` only
the ablations run, on the synthetic trial function (a pipeline check).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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
