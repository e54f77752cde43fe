"""Charts of benchmark runs, side by side: one panel per figure, one bar per run.

Every benchmark ends its output with one JSON line of figures; a comparison (before and after
a change, rate limiting on and off, a limit path forced) is two or more such lines. This draws
them so a reader sees the ratio at a glance, with each bar labelled by its value:

    .venv/bin/python bench/transfers.py | tee /tmp/before.txt      # at the old commit
    .venv/bin/python bench/transfers.py | tee /tmp/after.txt       # at the new one
    .venv/bin/python bench/charts.py docs/performance/limits.png \\
        before=/tmp/before.txt after=/tmp/after.txt --metric http_tps --metric http_api_cpu_ms

A run file may be a whole output: its last line that parses as a JSON object is taken. Several
runs may share a label (`after=/tmp/a1.txt after=/tmp/a2.txt`): the bar is their mean and the
single runs are drawn as dots, so noise is visible instead of hidden.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen on servers and in CI
import matplotlib.pyplot as plt  # after choosing the backend

#: Figures that describe the set-up, not the result: left out unless asked for.
SETUP = frozenset(
    {"workers", "connections", "duration_s", "server_cpus", "generator_cpus", "total_s"}
)


def last_figures(path: Path) -> dict[str, Any]:
    """The last line of ``path`` that is a JSON object (a benchmark's figures)."""
    for line in reversed(path.read_text().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                return parsed
    raise ValueError(f"{path}: no line of JSON figures")


def numeric(figures: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and key not in SETUP
    }


def draw(
    runs: Sequence[tuple[str, dict[str, Any]]],
    out: Path,
    *,
    metrics: Sequence[str] = (),
    title: str | None = None,
) -> list[str]:
    """Write the chart to ``out``; the metrics drawn, in order."""
    labels = list(dict.fromkeys(label for label, _ in runs))
    values: dict[str, dict[str, list[float]]] = {}
    for label, figures in runs:
        for key, value in numeric(figures).items():
            values.setdefault(key, {}).setdefault(label, []).append(value)
    chosen = list(metrics) or sorted(k for k, per in values.items() if len(per) == len(labels))
    missing = [m for m in chosen if m not in values]
    if missing:
        raise ValueError(f"no run has {', '.join(missing)}")
    columns = min(3, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors  # type: ignore[attr-defined]
    for index, metric in enumerate(chosen):
        ax = axes[index // columns][index % columns]
        for position, label in enumerate(labels):
            samples = values[metric].get(label, [])
            if not samples:
                continue
            mean = statistics.fmean(samples)
            bar = ax.bar(position, mean, color=colours[position % len(colours)], alpha=0.85)
            ax.bar_label(bar, labels=[f"{mean:,.3g}"], fontsize=8)
            if len(samples) > 1:
                ax.scatter([position] * len(samples), samples, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.margins(y=0.15)
    for index in range(len(chosen), rows * columns):
        axes[index // columns][index % columns].axis("off")
    benchmark = next((f.get("benchmark") for _, f in runs if f.get("benchmark")), "benchmark")
    fig.suptitle(title or f"{benchmark}: {' vs '.join(labels)}", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("runs", nargs="+", help="LABEL=FILE with a benchmark's output")
    parser.add_argument("--metric", action="append", default=[], help="a figure to draw")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    runs: list[tuple[str, dict[str, Any]]] = []
    for item in args.runs:
        label, sep, file = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: expected LABEL=FILE")
        runs.append((label, last_figures(Path(file))))
    drawn = draw(runs, args.out, metrics=args.metric, title=args.title)
    print(json.dumps({"chart": str(args.out), "metrics": drawn, "runs": len(runs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
