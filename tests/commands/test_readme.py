"""The README's library snippets: they run as printed, import only what they use, and link inside or to the web."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def unused_imports(source: str) -> set[str]:
    tree = ast.parse(source)
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return imported - used


def test_snippets_import_only_names_they_use():
    snippets = python_snippets()
    assert len(snippets) == 3
    for snippet in snippets:
        assert not unused_imports(snippet), snippet


@pytest.mark.usefixtures("one_thread")
def test_the_selection_snippet_runs_as_printed():
    namespace: dict = {}
    exec(compile(python_snippets()[1], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["idx"].shape == (2, 32) and namespace["kept"].shape == (2, 32, 384)
    assert namespace["idx"][:, 0].eq(0).all()


def test_links_stay_in_the_repository_or_go_to_the_web():
    root = README.parent
    for target in re.findall(r"\]\(([^)]+)\)", README.read_text()):
        if target.startswith(("http://", "https://", "#")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (root / path).resolve()
        assert resolved.is_relative_to(root) and resolved.exists(), target
        if anchor:
            assert anchor in markdown_anchors(resolved.read_text()), target


def markdown_anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.integration
@pytest.mark.usefixtures("one_thread")
def test_the_pyramidize_snippet_runs_as_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves to runs/mine
    namespace: dict = {}
    exec(compile(python_snippets()[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["lengths"] == [32, 16, 16, 16, 16, 16]
    assert namespace["model"].config.pyramid["lengths"] is None
    assert namespace["model"].config.pyramid["keep_ratios"] == [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]


def own_data_commands() -> list[list[str]]:
    section = README.read_text().split("## Your own data", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line.split("#")[0].split()[1:] for line in block.splitlines() if line.startswith("pyramid-bert ")]


def test_the_own_data_commands_parse_as_printed():
    from pyramid_bert import cli

    commands = own_data_commands()
    assert [argv[0] for argv in commands] == ["data", "data", "compress", "predict", "evaluate"]
    parser = cli.build_parser()
    for argv in commands:
        assert parser.parse_args(argv).func is not None


@pytest.mark.usefixtures("one_thread")
def test_the_pipeline_snippet_runs_as_printed_on_a_compress_style_folder(tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForSequenceClassification

    from pyramid_bert import is_pyramidized, pyramidize
    from train_fixtures import write_tiny_bert

    folder = write_tiny_bert(tmp_path / "reviews-fast", num_labels=2)
    model = AutoModelForSequenceClassification.from_pretrained(folder, id2label={0: "rotten", 1: "fresh"})
    pyramidize(model, keep_ratios=[0.5, 0.5])
    model.save_pretrained(folder)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_snippets()[2], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert is_pyramidized(namespace["classify"].model)
    assert capsys.readouterr().out.strip().startswith("[{'label': '")


def test_the_readme_reads_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) < 150, "move details to docs/ or benchmarks/ and link them"
    assert lines[0] == "# pyramid-bert" and "pyramid-bert reproduce" in "\n".join(lines[:15])
