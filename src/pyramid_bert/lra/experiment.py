"""The paper's Table 4 at CPU scale: one backbone, one LRA task, the input-selection methods side by side.

Every method trains the same architecture from the same initial weights on the same seeded subset, keeping
``k = floor((N + 1) * sqrt(1 - space_reduction))`` tokens (CLS included; for Big Bird rounded down to a
multiple of the block size) at the input layer, then reports test accuracy. Speed is measured afterwards on
the *same* (no-pruning model's) weights for every method: forward passes over one test batch, interleaved
(:func:`pyramid_bert.measure.timing.time_interleaved`), speedup = T(no pruning) / T(method) from paired repeats, the
selection's own cost included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from pyramid_bert.data.lra import load_lra_task
from pyramid_bert.errors import ConfigError
from pyramid_bert.lra.input_selection import keep_for_space_reduction
from pyramid_bert.lra.models import BACKBONES, LraModelConfig, build_lra_model
from pyramid_bert.lra.training import LraTrainConfig, predict_lra, train_lra_model
from pyramid_bert.measure.timing import speedup_stats, time_interleaved

# Table 4's columns: label -> (input selection method, m)
TABLE4_METHODS: dict[str, tuple[str, int | None]] = {
    "first_k": ("first_k", 1),
    "random": ("random", 1),
    "cs_k_1": ("coreset", None),
    "cs_opt": ("coreset", 1),
    "no_pruning": ("dense", 1),
}


@dataclass
class LraExperimentConfig:
    """One Table-4 comparison.

    Attributes:
        task: an LRA task name (``pyramid_bert.data.lra.LRA_TASK_NAMES``).
        backbone: "bigbird" or "performer".
        methods: labels of :data:`TABLE4_METHODS`.
        train_size, test_size: seeded random subsets of the task's train and test splits (None = whole split).
        space_reduction: attention-space reduction at the input layer (0.7 in Table 4).
        model: size of the backbone (its method/keep/m are set per method).
        train: training hyper-parameters.
        seed: seed of the subsets (the model and training seeds are in ``model`` and ``train``).
        timing_batch, timing_repeats: examples per timed forward pass and interleaved repeats.
        task_options: passed to ``load_lra_task`` (e.g. ``{"n": 4000}`` for a smaller Pathfinder set).
    """

    task: str
    backbone: str
    methods: tuple[str, ...] = tuple(TABLE4_METHODS)
    train_size: int | None = 2000
    test_size: int | None = 500
    space_reduction: float = 0.7
    model: dict[str, object] = field(default_factory=dict)
    train: LraTrainConfig = field(default_factory=LraTrainConfig)
    seed: int = 0
    timing_batch: int = 64
    timing_repeats: int = 5
    task_options: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        unknown = [label for label in self.methods if label not in TABLE4_METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"methods must be among {', '.join(TABLE4_METHODS)}, got {list(self.methods)}")
        reserved = {"backbone", "vocab_size", "num_labels", "seq_len", "pad_id", "method", "keep", "m"}
        if reserved & set(self.model):
            raise ConfigError(
                f"model options may not set {', '.join(sorted(reserved & set(self.model)))} "
                "(they come from the task and the method)"
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def subset(tokens: np.ndarray, labels: np.ndarray, size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of ``size`` rows (all rows when None or larger than the split)."""
    if size is None or size >= len(labels):
        return tokens, labels
    rows = np.sort(np.random.default_rng(seed).permutation(len(labels))[:size])
    return tokens[rows], labels[rows]


def _mask(tokens: np.ndarray, pad_id: int | None) -> np.ndarray | None:
    return None if pad_id is None else tokens != pad_id


def run_lra_comparison(config: LraExperimentConfig) -> dict[str, object]:
    """Train and evaluate every method of ``config``; measure speed on shared weights.

    Returns a JSON-able dict: ``config``, ``task``, ``keep``, ``seq_len``, ``train_examples``, ``test_examples``
    (the subset sizes actually used) and ``rows``, one per method with label,
    method, m, keep, space_reduction, accuracy, majority_share (the most predicted class's share of the test
    predictions), train_seconds, final_loss, speedup_median/q25/q75.
    """

    task = load_lra_task(config.task, **config.task_options)
    train_x, train_y = subset(task.tokens("train"), task.labels("train"), config.train_size, config.seed)
    test_x, test_y = subset(task.tokens("test"), task.labels("test"), config.test_size, config.seed + 1)
    base = LraModelConfig(
        backbone=config.backbone,
        vocab_size=task.vocab_size,
        num_labels=task.num_labels,
        seq_len=task.seq_len,
        pad_id=task.pad_id,
        **config.model,
    )  # type: ignore[arg-type]
    total = task.seq_len + 1
    keep = keep_for_space_reduction(
        total, config.space_reduction, multiple=base.block_size if config.backbone == "bigbird" else 1
    )

    def model_config(label: str) -> LraModelConfig:
        method, m = TABLE4_METHODS[label]
        return replace(base, method=method, keep=None if method == "dense" else keep, m=m)

    rows: list[dict[str, object]] = []
    trained: dict[str, torch.nn.Module] = {}
    for label in config.methods:
        model = build_lra_model(model_config(label))
        start = time.perf_counter()
        losses = train_lra_model(model, train_x, train_y, config.train, mask=_mask(train_x, task.pad_id))
        train_seconds = time.perf_counter() - start
        predictions = predict_lra(model, test_x, _mask(test_x, task.pad_id), batch_size=config.train.eval_batch_size)
        accuracy = float(np.mean(predictions == np.asarray(test_y)))
        trained[label] = model
        kept = model.config.kept_tokens
        rows.append(
            {
                "label": label,
                "method": model.config.method,
                "m": model.config.m,
                "keep": kept,
                "space_reduction": 1.0 - (kept / total) ** 2,
                "accuracy": accuracy,
                # 1.0: the model predicts one class for every test example (flagged in the summaries)
                "majority_share": float(np.bincount(predictions).max() / len(predictions)),
                "train_seconds": train_seconds,
                "final_loss": float(np.mean(losses[-10:])),
            }
        )

    configs = {label: model_config(label) for label in ("no_pruning", *config.methods)}
    dense_weights = trained["no_pruning"] if "no_pruning" in trained else build_lra_model(configs["no_pruning"])
    speed = measure_speedups(
        configs,
        dense_weights.state_dict(),
        test_x[: config.timing_batch],
        _mask(test_x[: config.timing_batch], task.pad_id),
        repeats=config.timing_repeats,
    )
    for row in rows:
        row.update(speed[row["label"]])
    return {"config": config.to_dict(), "task": task.name, "seq_len": task.seq_len, "keep": keep,
            "train_examples": len(train_y), "test_examples": len(test_y), "rows": rows}


def measure_speedups(
    configs: dict[str, LraModelConfig],
    weights: dict[str, torch.Tensor],
    tokens: np.ndarray,
    mask: np.ndarray | None,
    *,
    repeats: int = 5,
) -> dict[str, dict[str, float]]:
    """Inference speed of each model config on the same ``weights`` and batch ``tokens [b, N]``.

    ``configs`` must hold "no_pruning", the base of every speedup. Returns label -> forward_seconds (median),
    selection_seconds (median time of embedding + selection less the dense model's embedding alone),
    selection_share (of the forward), speedup_median, speedup_q25, speedup_q75 (paired, interleaved repeats).
    """

    if "no_pruning" not in configs:
        raise ConfigError("configs must include 'no_pruning', the base of the speedups")
    ids = torch.as_tensor(tokens, dtype=torch.long)
    batch_mask = None if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    calls = {}
    for label, model_config in configs.items():
        model = build_lra_model(model_config)
        model.load_state_dict(weights)
        calls[label] = _forward_call(model.eval(), ids, batch_mask)
        calls[f"{label}:select"] = _forward_call(model.eval(), ids, batch_mask, method="kept_hidden")
    stats = time_interleaved(calls, warmup=1, repeats=repeats)
    embed_only = stats["no_pruning:select"].median  # the dense model's selector returns its input
    result = {}
    for label in configs:
        speedup = speedup_stats(stats["no_pruning"], stats[label])
        selection = max(0.0, stats[f"{label}:select"].median - embed_only)
        result[label] = {
            "forward_seconds": stats[label].median,
            "selection_seconds": selection,
            "selection_share": selection / stats[label].median,
            "speedup_median": speedup.median,
            "speedup_q25": speedup.q25,
            "speedup_q75": speedup.q75,
        }
    return result


def _forward_call(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None, method: str = "__call__"
) -> Callable[[], None]:
    """A timed call: the whole forward, or ``kept_hidden`` (embedding and selection only)."""
    call = getattr(model, method)

    def run() -> None:
        with torch.inference_mode():
            call(ids, mask)

    return run


# The paper's Table 4 (test accuracy, %, 70 % attention-space reduction), keyed like our runs; our tasks stand
# in for LRA's: Fashion-MNIST pixels for CIFAR-10, generated Pathfinder-32, pang-lee reviews for IMDB bytes.
PAPER_TABLE4: dict[tuple[str, str], dict[str, float]] = {
    ("bigbird", "lra-image"): {"first_k": 26.9, "random": 39.4, "cs_k_1": 38.6, "cs_opt": 43.3, "no_pruning": 40.9},
    ("bigbird", "lra-pathfinder32"): {"first_k": 55.6, "random": 69.9, "cs_k_1": 69.3, "cs_opt": 71.7,
                                      "no_pruning": 73.5},
    ("bigbird", "lra-bytes"): {"first_k": 57.9, "random": 59.6, "cs_k_1": 59.1, "cs_opt": 61.4, "no_pruning": 63.8},
    ("performer", "lra-image"): {"first_k": 26.9, "random": 41.5, "cs_k_1": 39.8, "cs_opt": 45.5,
                                 "no_pruning": 42.9},
    ("performer", "lra-pathfinder32"): {"first_k": 52.4, "random": 58.2, "cs_k_1": 61.5, "cs_opt": 67.7,
                                        "no_pruning": 66.2},
    ("performer", "lra-bytes"): {"first_k": 59.9, "random": 59.9, "cs_k_1": 59.7, "cs_opt": 62.8, "no_pruning": 64.3},
}

METHOD_TITLES = {"first_k": "First-k", "random": "Random", "cs_k_1": "CS-k-1", "cs_opt": "CS (m=1)",
                 "no_pruning": "no pruning"}


def format_comparison(result: dict[str, object]) -> str:
    """A markdown table of one :func:`run_lra_comparison` result, with the paper's Table 4 row beside it."""
    config = result["config"]
    backbone, task = config["backbone"], result["task"]
    paper = PAPER_TABLE4.get((backbone, task), {})
    lines = [
        f"{backbone} on {task}: N = {result['seq_len']} (+ CLS), keep k = {result['keep']}, "
        f"train {result.get('train_examples', config['train_size'])} / "
        f"test {result.get('test_examples', config['test_size'])} examples",
        "",
        "| method | k | space red. | accuracy % | paper % | speedup (median [q25, q75]) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        reference = paper.get(row["label"])
        lines.append(
            f"| {METHOD_TITLES[row['label']]} | {row['keep']} | {100 * row['space_reduction']:.1f}% "
            f"| {100 * row['accuracy']:.1f} | {'-' if reference is None else f'{reference:.1f}'} "
            f"| {row['speedup_median']:.2f} [{row['speedup_q25']:.2f}, {row['speedup_q75']:.2f}] "
            f"| {row['train_seconds']:.0f} |"
        )
    return "\n".join(lines)
