"""Tables in benchmarks/*.md that a benchmark script measured are what its committed raw data rebuilds.

Each entry names the script, the arguments that rebuild a table from committed data alone (no model, no timing), and
the Markdown file that must contain the rebuilt table verbatim: a number edited by hand, or data committed without
its table (or the reverse), fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

#: The geometries of benchmarks/families.md, in its table's order.
FAMILY_GEOMETRIES = ("minilm-l6", "distilbert-small", "albert-small", "deberta-small", "modernbert-small", "bert-base",
                     "distilbert-base", "albert-base", "deberta-base", "modernbert-base")  # fmt: skip

#: The contrasts the accuracy study was designed for.
ACCURACY_CONTRASTS = "CS+KD:CS+,CS+KD:Att,CS+KD:Pool,CS+:CS+r,LD:CS+r"

#: Study pages that quote generated tables: each quoted file must appear in the page verbatim (the files themselves
#: are checked against their data above and in test_committed_tables.py).
QUOTED = {
    "accuracy_study.md": [
        "accuracy_study/report/variants.md",
        "accuracy_study/named_pairs.md",
        "accuracy_study/length_drop.md",
        "accuracy_study/trec/report/variants.md",
        "accuracy_study/trec/length_drop.md",
    ],
}

#: (script, its arguments (``{out}``: a scratch file it writes), the committed file holding the table)
REBUILDS = {
    "accuracy_pairs": (
        "accuracy_pairs.py",
        ["benchmarks/accuracy_study/trials.jsonl", "--out", "{out}"],
        "accuracy_study/pairs.md",
    ),
    "adaptive_accuracy": (
        "adaptive_accuracy.py",
        ["--from-csv", "benchmarks/adaptive_accuracy.csv", "--out", "{out}"],
        "adaptive_accuracy.md",
    ),
    "adaptive_training": (
        "adaptive_training.py",
        ["--from", *(f"benchmarks/adaptive_training/seed{seed}.csv" for seed in range(3)), "--out", "{out}"],
        "adaptive_accuracy.md",
    ),
    **{
        f"compile_speed_{batch}": ("compile_speed.py", ["--from", f"benchmarks/compile_speed/{batch}.csv"], "compile_speed.md")
        for batch in ("batch1", "batch32")
    },
    "deploy_speed_candidates": (
        "deploy_speed_table.py",
        ["benchmarks/deploy_speed/candidates.csv"],
        "deploy_speed.md",
    ),
    "deploy_speed": (
        "deploy_speed_table.py",
        ["benchmarks/deploy_speed/threads1.csv", "benchmarks/deploy_speed/threads2.csv"],
        "deploy_speed.md",
    ),
    **{
        f"analyses_{table}": ("analyses_tables.py", [table], "analyses.md")
        for table in ("m", "only-infer", "position", "redundancy")
    },
    "length_drop": (
        "length_drop_accuracy.py",
        ["--from", "benchmarks/accuracy_study/length_drop.csv", "--out", "{out}"],
        "accuracy_study/length_drop.md",
    ),
    "length_drop_trec": (
        "length_drop_accuracy.py",
        ["--from", "benchmarks/accuracy_study/trec/length_drop.csv", "--out", "{out}"],
        "accuracy_study/trec/length_drop.md",
    ),
    "accuracy_pairs_trec": (
        "accuracy_pairs.py",
        ["benchmarks/accuracy_study/trec/trials.jsonl", "--out", "{out}"],
        "accuracy_study/trec/pairs.md",
    ),
    "accuracy_named_pairs": (
        "accuracy_pairs.py",
        ["benchmarks/accuracy_study/trials.jsonl", "--out", "{out}", "--pairs", ACCURACY_CONTRASTS],
        "accuracy_study/named_pairs.md",
    ),
    "length_drop_step": ("length_drop_step.py", ["--from", "benchmarks/length_drop_step.csv"], "length_drop_step.md"),
    "lra_table4": ("lra_table4_summary.py", ["benchmarks/analyses/lra"], "lra_table4_results.md"),
    "real_speedup_batch128": (
        "bench_table.py",
        [
            f"benchmarks/real_speedup/{name}.csv"
            for name in ("minilm_b128_fixed", "minilm_b128_ratio", "bertbase_b128_fixed", "bertbase_b128_ratio")
        ],
        "real_speedup.md",
    ),
    "real_speedup_batch1": (
        "bench_table.py",
        ["benchmarks/real_speedup/minilm_b1_fixed.csv", "benchmarks/real_speedup/minilm_b1_ratio.csv"],
        "real_speedup.md",
    ),
    "selection_redundancy": ("analyses_tables.py", ["redundancy"], "selection_quality.md"),
    "families": (
        "bench_table.py",
        [f"benchmarks/families/{geometry}_fixed.csv" for geometry in FAMILY_GEOMETRIES],
        "families.md",
    ),
    "int8_scheme": (
        "int8_scheme.py",
        ["--from", "benchmarks/int8_scheme.csv", "--out", "{out}"],
        "int8_scheme.md",
    ),
    "selection_pairs": (
        "accuracy_pairs.py",
        [
            "benchmarks/selection_quality/trials.jsonl",
            "--out",
            "{out}",
            "--pairs",
            "CS+:CS,1st+merge:1st,CS+:1st+merge,CS+KD:CS+,CS+:Pool,CS+:Att",
        ],
        "selection_quality/pairs.md",
    ),
    "selection_training_free": (
        "selection_quality.py",
        ["--from", "benchmarks/selection_quality/training_free.jsonl", "--out", "{out}"],
        "selection_quality/training_free.md",
    ),
    "precision_accuracy": (
        "precision_accuracy.py",
        ["--from", "benchmarks/precision_accuracy.csv", "--out", "{out}"],
        "precision_accuracy.md",
    ),
}


def rebuilt_table(script: str, args: list[str], out: Path) -> str:
    command = [sys.executable, str(BENCHMARKS / script), *(arg.format(out=out) for arg in args)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return out.read_text() if "{out}" in args else done.stdout


@pytest.mark.parametrize("name", sorted(REBUILDS))
def test_the_committed_table_is_rebuilt_from_its_committed_data(name, tmp_path):
    script, args, committed = REBUILDS[name]
    table = rebuilt_table(script, args, tmp_path / "table.md").strip()
    assert table, f"{script} rebuilt nothing"
    assert table in (BENCHMARKS / committed).read_text(), f"benchmarks/{committed} differs from what {script} rebuilds"


def markdown_table(text: str, header_start: str) -> str:
    """The Markdown table of ``text`` whose header row starts with ``header_start``."""
    start = text.index(header_start)
    end = text.find("\n\n", start)
    return text[start : end if end >= 0 else len(text)].strip()


def test_the_kept_token_table_is_the_committed_output_of_kept_tokens_py():
    # kept_tokens.py needs a fine-tuned checkpoint (not committed); its whole output is, and the study quotes it
    output = (BENCHMARKS / "selection_quality" / "kept_tokens.md").read_text()
    study = (BENCHMARKS / "selection_quality.md").read_text()
    table = markdown_table(output, "| tokens | layer |")
    assert table.count("\n") >= 10
    assert markdown_table(study, "| tokens | layer |") == table


@pytest.mark.parametrize(("page", "quoted"), [(page, name) for page, names in QUOTED.items() for name in names])
def test_a_study_page_quotes_its_generated_tables_verbatim(page, quoted):
    text = (BENCHMARKS / quoted).read_text().strip()
    assert text and text in (BENCHMARKS / page).read_text(), f"benchmarks/{page} does not quote benchmarks/{quoted}"
