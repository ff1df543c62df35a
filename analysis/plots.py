"""Plots shared by runs and reports. Figures are made with matplotlib's object API (`figure()` below), never
pyplot: no backend is chosen for the process and no screen is needed — importing this module changes nothing
process-wide."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from corpus.fonts import font


def figure(figsize: tuple[float, float], rows: int = 1, cols: int = 1, squeeze: bool = True) -> tuple[Figure, object]:
    """A figure and its axes, drawn with the Agg renderer when saved (like pyplot.subplots, without pyplot)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def confusion_png(truth: Sequence[str], predicted: Sequence[str], path: Path, title: str = "") -> Path:
    """A confusion matrix (rows: truth, columns: prediction; counts annotated), drawn with Pillow: one
    is logged per run, hundreds per sweep, so it must take milliseconds, not the second matplotlib takes."""
    labels = sorted(set(truth) | set(predicted))
    index = {label: k for k, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    cell, face = 26, font("DejaVuSans.ttf", 11)
    margin = 12 + max(int(face.getlength(label)) for label in labels)
    width, height = margin + cell * len(labels) + 20, 28 + margin + cell * len(labels) + 24
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), title, font=font("DejaVuSans.ttf", 11), fill="black")
    top = 28 + margin
    peak = max(1, int(matrix.max()))
    for i, j in np.ndindex(matrix.shape):
        count = int(matrix[i, j])
        shade = int(255 - 200 * count / peak)
        colour = (shade, shade, 255) if i == j else (255, shade, shade)
        box = (margin + j * cell, top + i * cell, margin + (j + 1) * cell, top + (i + 1) * cell)
        draw.rectangle(box, fill=colour if count else "white", outline=(220, 220, 220))
        if count:
            draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), str(count), font=face,
                      fill="white" if shade < 120 else "black", anchor="mm")
    for k, label in enumerate(labels):
        draw.text((margin - 6, top + k * cell + cell / 2), label, font=face, fill="black", anchor="rm")
        column = Image.new("RGB", (margin, cell), "white")
        ImageDraw.Draw(column).text((margin - 6, cell / 2), label, font=face, fill="black", anchor="rm")
        image.paste(column.rotate(90, expand=True), (margin + k * cell, 28))
    draw.text((margin, height - 18), "columns: predicted · rows: true", font=face, fill=(90, 90, 90))
    image.save(path)
    return path


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated: no other row has lower-or-equal x and higher-or-equal y (one strictly)."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    front, best = [], -np.inf
    for _, row in ordered.iterrows():
        if row[y] > best:
            front.append(row)
            best = row[y]
    return pd.DataFrame(front)


def accuracy_vs_latency_png(df: pd.DataFrame, sla_ms: float, path: Path) -> Path:
    """Accuracy vs p95 end-to-end latency per (configuration, distribution), with the p95's 95% interval as a
    horizontal error bar where the runs have one; Pareto front per distribution; SLA line."""
    fig, ax = figure((9, 6))
    colours = matplotlib.colormaps["tab10"]
    for k, (dist, part) in enumerate(df.groupby("distribution", sort=False)):
        if {"latency_p95_low", "latency_p95_high"} <= set(part.columns):
            low = (part["latency_p95"] - part["latency_p95_low"]).clip(lower=0)
            high = (part["latency_p95_high"] - part["latency_p95"]).clip(lower=0)
            ax.errorbar(part["latency_p95"], part["accuracy"] * 100, xerr=[low, high], fmt="none",
                        ecolor=colours(k % 10), alpha=0.35, linewidth=0.8)
        ax.scatter(part["latency_p95"], part["accuracy"] * 100, s=18, alpha=0.55, color=colours(k % 10), label=dist)
        front = pareto_front(part, "latency_p95", "accuracy")
        ax.plot(front["latency_p95"], front["accuracy"] * 100, "-", color=colours(k % 10), linewidth=1.4)
    ax.axvline(sla_ms, color="red", linestyle="--", linewidth=1.2, label=f"SLA {sla_ms:.0f} ms (p95)")
    ax.set_xlabel("end-to-end latency per document, p95 (ms)")
    ax.set_ylabel("accuracy (% of assertions passed)")
    ax.set_title("Accuracy vs latency: every configuration × distribution (lines: Pareto fronts)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def heatmap_png(pivot: pd.DataFrame, path: Path, title: str) -> Path:
    """Configuration × distribution heat map of accuracy (%), annotated."""
    values = pivot.to_numpy(dtype=float) * 100
    fig, ax = figure((2.2 + 1.1 * pivot.shape[1], 1.5 + 0.28 * pivot.shape[0]))
    image = ax.imshow(values, cmap="RdYlGn", vmin=max(0, np.nanmin(values) - 5), vmax=100, aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), pivot.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(pivot.shape[0]), pivot.index, fontsize=6)
    for (i, j), value in np.ndenumerate(values):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


STEP_COLOURS = {"preprocess": "#8ecae6", "ocr": "#fb8500", "classify": "#219ebc", "extract": "#8338ec"}


def step_breakdown_png(bars: dict[str, dict[str, float]], path: Path, title: str = "") -> Path:
    """Stacked bars of mean latency per document per step, one bar per configuration (label → {step: ms});
    each bar is annotated with its most expensive step."""
    steps = [s for s in STEP_COLOURS if any(s in b for b in bars.values())]
    labels = list(bars)
    fig, ax = figure((9, 0.9 + 0.55 * len(labels)))
    left = np.zeros(len(labels))
    for step in steps:
        values = np.array([bars[label].get(step, 0.0) for label in labels])
        ax.barh(range(len(labels)), values, left=left, color=STEP_COLOURS[step], label=step)
        left += values
    for k, label in enumerate(labels):
        top = max(bars[label], key=bars[label].get)
        share = bars[label][top] / max(sum(bars[label].values()), 1e-9)
        ax.text(left[k], k, f"  {left[k]:.0f} ms · {top} {share * 100:.0f}%", va="center", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.35 if len(left) else 1)
    ax.set_xlabel("mean latency per document (ms)")
    ax.set_title(title, fontsize=9, pad=22)
    ax.legend(fontsize=7, ncol=len(steps), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def search_png(table, path: Path) -> Path:
    """Survivors per stage of a halving search, one line per distribution (log scale), documents on top."""
    fig, ax = figure((6.4, 3.6))
    for dist, part in table.groupby("distribution", sort=False):
        ax.plot(part["stage"], part["evaluated"], marker="o", label=dist)
        for _, row in part.iterrows():
            ax.annotate(f"{row['documents']} docs", (row["stage"], row["evaluated"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("stage")
    ax.set_ylabel("configurations evaluated")
    ax.set_xticks(sorted(table["stage"].unique()))
    ax.set_title("successive halving: configurations per stage (documents seen annotated)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
