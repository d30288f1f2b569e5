"""The folder ``compress`` hands over: a standard Hugging Face model folder plus its model card and report.

``config.json`` (model_type "pyramid-bert", with ``pyramid`` settings and ``id2label`` / ``label2id``: Auto classes
and pipelines load it pyramidized, see :mod:`pyramid_bert.patch.saved_config`), ``pyramid_bert_auto.py`` (for
``trust_remote_code``), ``model.safetensors``, the tokenizer
(``model_max_length`` = the N the model was made for), ``README.md`` (model card: usage, the table of tried
configurations, the choice and why), ``report.md`` (the same table and every setting), ``pareto.png`` (dev metric
against real speedup, frontier, the chosen point) and ``compress.json`` (all of it as data). Written to a temporary
sibling and renamed. No path of the machine it was made on is written: files and folders are named by their names
(and the data files by their SHA-256).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from transformers import AutoTokenizer

from pyramid_bert.compress.choose import POINTS, dev_loss, loss_interval
from pyramid_bert.data.user_task import DataFiles, files_identity
from pyramid_bert.io import atomic_write_json, mark_output_dir
from pyramid_bert.patch.hf import load_pyramid_model
from pyramid_bert.patch.reschedule import set_keep_ratios
from pyramid_bert.patch.saved_config import CODE_FILE, INSTALL_COMMAND
from pyramid_bert.precision import mark_precision
from pyramid_bert.report.frontier import pareto_frontier
from pyramid_bert.training import checkpoint

if TYPE_CHECKING:
    from pyramid_bert.compress.run import CompressResult, CompressSettings
    from pyramid_bert.data import TaskData

PLOT_FILE = "pareto.png"
#: The run as data, in the output folder (its presence marks a folder compress wrote).
RESULT_FILE = "compress.json"
#: Row fields that stay in the work files (a local path; per-example dev predictions and labels).
WORK_ONLY = frozenset({"checkpoint", "dev_predictions", "dev_labels"})


def write_output(result: CompressResult, settings: CompressSettings, task: TaskData, chosen: Path) -> Path:
    """Write ``result.out`` from the chosen configuration's checkpoint folder ``chosen``."""

    out = result.out
    tmp = checkpoint.temporary_sibling(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    model, tokenizer = load_pyramid_model(str(chosen), precision="fp32"), AutoTokenizer.from_pretrained(chosen)
    if result.chosen_row.get("shared_model"):  # one LengthDrop model served every schedule: ship the chosen one
        set_keep_ratios(model, result.chosen_row["keep_ratios"])
    tokenizer.model_max_length = task.max_length  # pipelines and predict truncate at the model's N
    mark_precision(model.config, chosen_precision(result))  # float32 weights; load_pyramid_model quantizes at load
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    table = configuration_table(result, task.metric)
    paths = local_paths(result, settings, task)
    (tmp / "README.md").write_text(without_local_paths(model_card(result, settings, task, table), paths))
    (tmp / "report.md").write_text(without_local_paths(report(result, settings, task, table), paths))
    plot_pareto(result, task.metric, tmp / PLOT_FILE)
    rows = [{key: value for key, value in row.items() if key not in WORK_ONLY} for row in result.rows]
    dense = {key: value for key, value in result.dense.items() if key not in WORK_ONLY}
    summary = {"chosen": result.chosen, "reason": result.reason, "dense": dense, "rows": rows, **result.notes}
    atomic_write_json(tmp / RESULT_FILE, without_local_paths(with_data_fingerprint(summary, task), paths))
    mark_output_dir(tmp, "compress", whole=True)  # a re-run may replace this folder while it holds only these files
    checkpoint.replace_dir(tmp, out)
    return out


def chosen_precision(result: CompressResult) -> str:
    """The precision the chosen configuration was measured at (``fp32`` in work files from before precisions)."""
    return result.chosen_row.get("precision", "fp32")


def local_paths(result: CompressResult, settings: CompressSettings, task: TaskData) -> list[str]:
    """The paths of this machine that the shipped texts could name (output, model, data files, dense checkpoint), as
    given and resolved, longest first."""
    files = (task.notes or {}).get("files") or {}
    given = [str(result.out), settings.out, settings.model, str(result.dense.get("checkpoint") or "")]
    given += [str(files[name]) for name in ("train", "dev", "test") if files.get(name)]
    paths = {path for path in given if path and Path(path).exists()} | {str(result.out), settings.out}
    paths |= {str(Path(path).resolve()) for path in paths}
    return sorted(paths, key=len, reverse=True)


def without_local_paths(value: Any, paths: list[str]) -> Any:
    """``value`` (text, or JSON-like data) with each of ``paths`` replaced by its last part (a file or folder name)."""
    if isinstance(value, str):
        for path in paths:
            value = value.replace(path, Path(path).name)
        return value
    if isinstance(value, dict):
        return {key: without_local_paths(item, paths) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_local_paths(item, paths) for item in value]
    return value


def with_data_fingerprint(summary: dict[str, Any], task: TaskData) -> dict[str, Any]:
    """``summary`` whose data notes name the user's files by :func:`~pyramid_bert.data.user_task.files_identity`
    (names, columns, N, SHA-256 of the bytes) instead of their paths; unchanged for a named task."""

    files = (summary.get("data_notes") or {}).get("files")
    if not files:
        return summary
    identity = files_identity(DataFiles.from_dict(files), task.max_length)
    return {**summary, "data_notes": {**summary["data_notes"], "files": identity}}


def configuration_table(result: CompressResult, metric: str) -> str:
    """Markdown: dense, then every tried configuration with real speedup, dev/test metric and drops, the choice."""
    dense = result.dense
    lines = [
        f"| configuration | real speedup [IQR] | FLOPs model | dev {metric} | test {metric} | dev loss [95%] | test loss | |",
        "|---|---|---|---|---|---|---|---|",
        f"| dense{' (warm start: the given model)' if dense.get('warm_start') else ''} | 1.00X | 1.00X | "
        f"{dense['dev'] * POINTS:.1f} | {dense['test'] * POINTS:.1f} | - | - | |",
    ]
    for index, row in enumerate(result.rows):
        mark = "**chosen**" if index == result.chosen else ""
        lines.append(
            f"| {row['label']} | {row['speedup']:.2f}X [{row['speedup_q25']:.2f}, {row['speedup_q75']:.2f}] | "
            f"{row['predicted']:.2f}X | {row['dev'] * POINTS:.1f} | {row['test'] * POINTS:.1f} | "
            f"{_loss_text(row, dense['dev'])} | {(dense['test'] - row['test']) * POINTS:.1f} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def _loss_text(row: dict[str, Any], dense_dev: float) -> str:
    """Points lost on dev against dense (negative: a gain), with the paired bootstrap interval when measured."""
    interval = loss_interval(row)
    loss = dev_loss(row, dense_dev)
    return f"{loss:.1f}" if interval is None else f"{loss:.1f} [{interval[0]:.1f}, {interval[1]:.1f}]"


def _goal(settings: CompressSettings) -> str:
    if settings.target_speedup is not None:
        return f"--target-speedup {settings.target_speedup:g}"
    return f"--max-drop {settings.max_drop:g}"


def _summary(result: CompressResult, settings: CompressSettings, metric: str) -> str:
    row, dense = result.chosen_row, result.dense
    return (
        f"Chosen: **{row['label']}**, {row['speedup']:.2f}X real speedup against the dense model (both on "
        f"length-sorted batches padded per batch, batch {settings.eval_batch_size}, {row['examples']} dev sentences), "
        f"dev {metric} {row['dev'] * POINTS:.1f} (a loss of {_loss_text(row, dense['dev'])} points against dense; "
        f"negative: a gain), test {row['test'] * POINTS:.1f} (a loss of {(dense['test'] - row['test']) * POINTS:.1f}). "
        f"Goal {_goal(settings)}: "
        f"{result.reason}. Test was not used for choosing.\n"
    )


def model_card(result: CompressResult, settings: CompressSettings, task: TaskData, table: str) -> str:
    """``README.md`` of the output folder (Hugging Face model card with YAML front matter)."""
    name = result.out.name
    return (
        "---\nlibrary_name: transformers\npipeline_tag: text-classification\ntags:\n- pyramid-bert\n- text-classification\n---\n\n"
        f"# {name}\n\nA Pyramid-BERT sequence classifier made by `pyramid-bert compress` from `{settings.model}` on "
        f"`{task.name}` ({', '.join(f'{k} {v}' for k, v in result.notes['splits'].items())}; labels: "
        f"{', '.join(task.label_names) or 'regression'}; N = {task.max_length}). It keeps fewer tokens in each "
        "encoder layer (core-set token selection), so it runs faster than the dense model it came from.\n\n"
        + _summary(result, settings, task.metric)
        + _use_section(name)
        + _precision_note(chosen_precision(result))
        + f"## Configurations tried\n\n{table}\n![dev metric against real speedup]({PLOT_FILE})\n\n"
        "Speedups were measured on a shared machine in one process with interleaved repeats; see `report.md`.\n"
    )


def _precision_note(precision: str) -> str:
    """What the model card says about the precision the chosen configuration runs at."""
    if precision == "fp32":
        return "Precision: float32.\n\n"
    return (
        f"Precision: **{precision}**: the weights are stored as float32 and `config.json` says `\"precision\": "
        f"\"{precision}\"`, so `load_pyramid_model` quantizes every Linear layer to {precision} as it loads (CPU only; "
        "the measured speedup and metrics above are at that precision); `load_pyramid_model(name, precision=\"fp32\")` "
        "gives the float32 model.\n\n"
    )


def _use_section(name: str) -> str:
    """The card's "Use": the usual Hugging Face loading, and what happens where pyramid-bert is missing (and why)."""
    return (
        "\n## Use\n\n```python\nimport pyramid_bert  # registers the model type pyramid-bert with transformers\n"
        f'from transformers import pipeline\n\nclassify = pipeline("text-classification", model="{name}")\n'
        'classify("a sentence to label")\n```\n\n'
        f'Once `pyramid_bert` is imported, `pipeline` and `AutoModelForSequenceClassification.from_pretrained("{name}")` '
        "load this folder with its token selection (`config.json`: `model_type` `pyramid-bert`, the settings under "
        f"`pyramid`), as `pyramid_bert.load_pyramid_model(\"{name}\")` does. Without the import, "
        f"`trust_remote_code=True` runs this folder's `{CODE_FILE}`, which only imports the classes of the installed "
        "pyramid-bert. **Never silently dense**, by choice: a model loaded without its token selection would answer "
        "as if nothing were wrong, at none of the speed, so where pyramid-bert is missing loading fails: transformers "
        f"first asks for `trust_remote_code=True`, then `{CODE_FILE}` says `{INSTALL_COMMAND}`. The weights are the "
        "dense model's, under their usual names: the dense class named by `architectures` in `config.json` (e.g. "
        f'`BertForSequenceClassification.from_pretrained("{name}")`) reads them deliberately, without the token '
        f"selection. Command line: `pyramid-bert predict {name} --input FILE --output FILE`.\n\n"
    )


def report(result: CompressResult, settings: CompressSettings, task: TaskData, table: str) -> str:
    """``report.md``: the table, the choice and every setting and note needed to re-run it."""
    notes = result.notes
    setting_lines = "\n".join(f"- `{key}`: {value}" for key, value in settings.to_dict().items() if key != "candidates")
    data_notes = task.notes or {}
    return (
        f"# compress report: {task.name}\n\n{_summary(result, settings, task.metric)}\n{table}\n"
        f"![dev metric against real speedup]({PLOT_FILE})\n\n## How\n\n"
        f"- dense model: {'the given model as is (warm start)' if notes['warm_start'] else f'fine-tuned from {settings.model} ({settings.dense_epochs:g} epochs)'}; "
        + _adaptation(settings) +
        f"- real speedup: median of paired ratios T(dense) / T(pyramid), same weights, same length-sorted batches "
        f"padded per batch, {settings.timing_repeats} interleaved repeats, {notes['threads']} thread(s)\n"
        f"- data: {', '.join(f'{k} {v}' for k, v in notes['splits'].items())}; N = {task.max_length}"
        f" ({data_notes.get('max_length_rule', 'the task N')})"
        + (f"; {data_notes['held_out']}" if data_notes.get("held_out") else "")
        + f"\n- wall time: {notes['seconds']:.0f} s (all runs of this compress together)\n\n## Settings\n\n{setting_lines}\n"
    )


def _adaptation(settings: CompressSettings) -> str:
    """The report's line on how the configurations came from the dense model (one fine-tune each, or LengthDrop)."""
    how = f"{settings.adapt_epochs:g} epochs, lr {settings.lr:g}, batch {settings.batch_size}"
    if not settings.length_drop:
        return f"each configuration adapted from it ({how})\n"
    return (
        f"one LengthDrop model adapted from it ({how}; each step the smallest schedule of its configurations and one "
        f"random schedule between that and keeping everything, bound {settings.length_drop:g}: 2 forwards and "
        "backwards per step) for each group of configurations differing only in their schedule; every row marked "
        "[LengthDrop] is that one model run at the row's schedule (no fine-tune per schedule)\n"
    )


def plot_pareto(result: CompressResult, metric: str, path: Path) -> Path:
    """PNG: dev metric (x100) against real speedup; frontier line; the chosen configuration circled; dense dashed."""

    xs = [row["speedup"] for row in result.rows]
    ys = [row["dev"] * POINTS for row in result.rows]
    figure = Figure(figsize=(5, 3.5))
    ax = figure.subplots()
    ax.scatter(xs, ys, color="tab:blue", zorder=3, label="configurations")
    frontier = pareto_frontier(xs, ys)
    ax.plot([xs[i] for i in frontier], [ys[i] for i in frontier], color="tab:red", linewidth=1, label="Pareto frontier")
    ax.scatter([xs[result.chosen]], [ys[result.chosen]], s=160, facecolors="none", edgecolors="black", zorder=4,
               label="chosen")  # fmt: skip
    ax.axhline(result.dense["dev"] * POINTS, color="gray", linestyle="--", linewidth=0.8, label="dense")
    for x, y, row in zip(xs, ys, result.rows, strict=True):
        ax.annotate(row["label"], (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("real speedup (X, vs dense on the same sorted batches)")
    ax.set_ylabel(f"dev {metric} (x100)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path
