"""Output of the redundancy analysis: CSV tables, the Figure 1 style PNG and a Markdown section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pyramid_bert.analysis.redundancy import RedundancyResult
from pyramid_bert.io import atomic_write_text, write_csv_atomic
from pyramid_bert.report.plots import save_figure


def layer_name(layer: int) -> str:
    """``0`` -> "embeddings", ``j`` -> "encoder j"."""
    return "embeddings" if layer == 0 else f"encoder {layer}"


def example_rows(result: RedundancyResult) -> list[dict[str, Any]]:
    """One row per input and layer: real tokens, mean cosine to CLS, mean pairwise cosine, clusters (both eps)."""
    rows = []
    for layer, statistics in sorted(result.per_layer.items()):
        for index, stats in enumerate(statistics):
            rows.append({
                "layer": layer, "example": index, "tokens": stats.tokens,
                "cls_cosine_mean": round(float(stats.cls_cosine.mean()), 4) if len(stats.cls_cosine) else "",
                "pair_cosine": "" if np.isnan(stats.pair_cosine) else round(stats.pair_cosine, 4),
                "nn_distance_median": round(float(np.median(stats.nn_distance)), 4) if len(stats.nn_distance) else "",
                "clusters_paper": stats.clusters[0], "clusters_quantile": stats.clusters[1],
            })  # fmt: skip
    return rows


def plot_redundancy(result: RedundancyResult, path: str | Path, *, title: str = "") -> Path:
    """Figure 1 for every layer: histograms of cosine to CLS, of pairwise cosine per input, and of DBSCAN
    clusters per input (both eps rules); one column per layer."""

    layers = sorted(result.per_layer)
    rows = (
        ("cosine to CLS (all tokens)", lambda s: np.concatenate([x.cls_cosine for x in s]), np.linspace(-0.2, 1, 25)),
        ("mean pairwise cosine per input", lambda s: np.array([x.pair_cosine for x in s if not np.isnan(x.pair_cosine)]),
         np.linspace(-0.2, 1, 25)),
        (f"DBSCAN clusters per input, eps {result.eps_paper:g}",
         lambda s: np.array([x.clusters[0] for x in s]), None),
        (f"DBSCAN clusters, eps {result.eps_quantile:.3f} (q{result.quantile:g})",
         lambda s: np.array([x.clusters[1] for x in s]), None),
    )  # fmt: skip
    figure = Figure(figsize=(2.3 * len(layers), 2.0 * len(rows)))
    axes = figure.subplots(len(rows), len(layers), squeeze=False)
    for r, (label, values, bins) in enumerate(rows):
        for c, layer in enumerate(layers):
            data = values(result.per_layer[layer])
            ax = axes[r][c]
            if bins is None:
                top = int(data.max()) if len(data) else 1
                bins_here = np.arange(0.5, top + 1.5, max(1, (top + 1) // 20))
                ax.hist(data, bins=bins_here, color="tab:orange")
            else:
                ax.hist(data, bins=bins, color="tab:blue")
            if r == 0:
                ax.set_title(layer_name(layer), fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
            ax.tick_params(labelsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()

    return save_figure(figure, path)


def markdown_section(result: RedundancyResult, *, heading: str, how: str, files: dict[str, Path]) -> str:
    """A Markdown section: settings, the per-layer table and where the files are."""
    lines = [
        f"## {heading}",
        "",
        how,
        "",
        f"DBSCAN (scikit-learn), metric cosine dissimilarity, min_samples {result.min_samples}: eps "
        f"{result.eps_paper:g} (the paper's, Appendix F) and eps {result.eps_quantile:.4f} (the {result.quantile:g} "
        "quantile of the nearest-neighbour cosine dissimilarities at encoder 1, fixed for every layer). "
        "Real tokens only (CLS and [SEP] included); quantiles over pooled tokens, means over inputs; "
        "nn = Euclidean distance to the nearest other token, rel = divided by the input's mean token norm.",
        "",
        "| layer | cos to CLS mean | q10 / q50 / q90 | pairwise cos | nn q50 | nn rel q50 | nn cos-dist q50 | "
        "clusters eps paper (per token) | own cluster at eps paper (share of tokens) | clusters eps quantile (per token) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.summaries:
        lines.append(
            f"| {layer_name(s.layer)} | {s.cls_cosine_mean:.3f} | {s.cls_cosine_q10:.3f} / {s.cls_cosine_q50:.3f} / "
            f"{s.cls_cosine_q90:.3f} | {s.pair_cosine_mean:.3f} | {s.nn_distance_q50:.3f} | {s.nn_relative_q50:.3f} | "
            f"{s.nn_cosine_distance_q50:.4f} | {s.clusters_paper_mean:.2f} ({s.cluster_share_paper_mean:.2f}) | "
            f"{s.singleton_share_paper_mean:.2f} | "
            f"{s.clusters_quantile_mean:.2f} ({s.cluster_share_quantile_mean:.2f}) |"
        )
    lines += ["", *[f"- {name}: `{path}`" for name, path in files.items()], ""]
    return "\n".join(lines)


def write_redundancy(result: RedundancyResult, out: str | Path, *, heading: str, how: str) -> dict[str, Path]:
    """Write ``redundancy.csv`` (per layer), ``redundancy-examples.csv``, ``redundancy.png``, ``redundancy.md``."""
    out = Path(out)
    files = {
        "per-layer table": out / "redundancy.csv",
        "per-input table": out / "redundancy-examples.csv",
        "figure": out / "redundancy.png",
        "section": out / "redundancy.md",
    }
    write_csv_atomic(files["per-layer table"], [s.as_row() for s in result.summaries])
    write_csv_atomic(files["per-input table"], example_rows(result))
    plot_redundancy(result, files["figure"], title=heading)
    atomic_write_text(files["section"], markdown_section(result, heading=heading, how=how, files=files))
    return files
