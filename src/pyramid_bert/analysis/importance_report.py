"""Output of the importance analysis: a CSV of every curve, Figures 4-5 as PNG, and a Markdown section."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from pyramid_bert.analysis.importance import ImportanceCurve
from pyramid_bert.io import atomic_write_text, write_csv_atomic
from pyramid_bert.report.plots import save_figure

#: k values shown in the Markdown table.
SHOWN_K = (1, 2, 3, 5, 10, 20)
#: A k enters the trend statistic only when at least this many inputs have a k-th real token.
MIN_AFFECTED = 20


def m_label(m: int | float | None) -> str:
    """``None`` -> "k-1", ``0.5`` -> "0.5k", ``1`` -> "1"."""
    return "k-1" if m is None else (f"{m:g}k" if isinstance(m, float) else str(m))


def curve_rows(curves: Sequence[ImportanceCurve]) -> list[dict[str, Any]]:
    """One CSV row per (encoder, m, k)."""
    return [
        {"encoder": c.layer, "m": m_label(c.m), "k": k + 1, "mi": round(c.mi[k], 5),
         "mi_affected": "" if math.isnan(c.mi_affected[k]) else round(c.mi_affected[k], 5),
         "affected_inputs": c.affected[k], "agreement": round(c.agreement[k], 5)}
        for c in curves for k in range(len(c.mi))
    ]  # fmt: skip


def trend(curve: ImportanceCurve) -> float:
    """Spearman correlation of k with the MI over affected inputs, over the k with >= MIN_AFFECTED inputs
    (positive: less important tokens, removed, change the predictions less, as the paper expects)."""

    ks = [k for k in range(len(curve.mi)) if curve.affected[k] >= MIN_AFFECTED and not math.isnan(curve.mi_affected[k])]
    if len(ks) < 3:
        return float("nan")
    return float(spearmanr(ks, [curve.mi_affected[k] for k in ks]).statistic)


def plot_importance(curves: Sequence[ImportanceCurve], m: int | float | None, path: Path, *, ceiling: float,
                    title: str) -> Path:  # fmt: skip
    """Figure 4 (m = 1) or 5 (m = k-1): MI vs k, one line per encoder; left all inputs, right affected ones."""

    figure = Figure(figsize=(10, 3.6))
    axes = figure.subplots(1, 2)
    for curve in (c for c in curves if c.m == m):
        ks = np.arange(1, len(curve.mi) + 1)
        axes[0].plot(ks, curve.mi, marker=".", markersize=3, label=f"encoder {curve.layer}")
        valid = np.array(curve.affected) >= MIN_AFFECTED
        axes[1].plot(ks[valid], np.array(curve.mi_affected)[valid], marker=".", markersize=3,
                     label=f"encoder {curve.layer}")  # fmt: skip
    for ax, label in zip(
        axes, ("all inputs (the paper's)", f"inputs with a k-th token (>= {MIN_AFFECTED})"), strict=True
    ):
        ax.axhline(ceiling, color="gray", linestyle="--", linewidth=0.8, label="entropy of dense predictions")
        ax.set_xlabel("sorted index k (token removed)")
        ax.set_ylabel("mutual information (nats)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{title}: Coreset-select-{m_label(m)} order", fontsize=10)
    figure.tight_layout()

    return save_figure(figure, path)


def write_importance(curves: Sequence[ImportanceCurve], ceiling: float, out: Path, *, heading: str,
                     how: str) -> dict[str, Path]:  # fmt: skip
    """Write ``importance.csv``, ``importance-m<m>.png`` per m, and ``importance.md``."""
    files: dict[str, Path] = {"table": out / "importance.csv"}
    write_csv_atomic(files["table"], curve_rows(curves))
    for m in dict.fromkeys(c.m for c in curves):
        name = f"figure m={m_label(m)}"
        files[name] = plot_importance(curves, m, out / f"importance-m{m_label(m)}.png", ceiling=ceiling, title=heading)
    lines = [f"## {heading}", "", how, "",
             f"Entropy of the dense predictions (the MI ceiling; ln 2 = {math.log(2):.4f}): {ceiling:.4f} nats. "
             "MI over all inputs (the paper's measure) at k; in brackets the MI over the inputs that have a k-th "
             f"real token; trend = Spearman correlation of k with the latter (k with >= {MIN_AFFECTED} such inputs; "
             "positive = the paper's pattern).", "",
             "| encoder | m | " + " | ".join(f"k={k}" for k in SHOWN_K) + " | trend |",
             "|---|---|" + "---|" * (len(SHOWN_K) + 1)]  # fmt: skip
    for c in curves:
        cells = [f"{c.mi[k - 1]:.3f} ({c.mi_affected[k - 1]:.3f})" if k <= len(c.mi) else "" for k in SHOWN_K]
        lines.append(f"| {c.layer} | {m_label(c.m)} | " + " | ".join(cells) + f" | {trend(c):+.2f} |")
    lines += ["", *[f"- {name}: `{path}`" for name, path in files.items()], ""]
    files["section"] = out / "importance.md"
    atomic_write_text(files["section"], "\n".join(lines))
    return files
