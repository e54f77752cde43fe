"""PNG charts of the chaos runs and the soak, for docs/reliability/ (matplotlib, Agg)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from tests.chaos.scenario import Result

GATEWAY_COLOURS = {"mercadopago": "tab:blue", "efi": "tab:orange"}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _shade(ax: Axes, result: Result, zero: float) -> None:
    for n, event in enumerate(result.events):
        ax.axvspan(event.started - zero, max(event.ended, event.started + 0.2) - zero,
                   color="tab:red", alpha=0.15, label="fault" if n == 0 else None)  # fmt: skip


def _throughput_latency(ax: Axes, result: Result) -> None:
    """Acknowledged operations per second, and p50/p99 of time to acknowledgement."""
    zero = result.began
    acked: dict[int, list[float]] = defaultdict(list)
    for op in result.history.ops:
        if op.acked_at is not None and op.kind != "funding":
            acked[int(op.acked_at - zero)].append(op.acked_at - op.started)
    if not acked:
        return
    seconds = list(range(0, max(acked) + 1))
    ax.bar(seconds, [len(acked.get(s, [])) for s in seconds], color="tab:gray", alpha=0.5,
           label="acknowledged/s")  # fmt: skip
    ax.set_ylabel("ops/s")
    twin = ax.twinx()
    marks = [s for s in seconds if acked.get(s)]
    twin.plot(marks, [_pct(acked[s], 50) * 1000 for s in marks], color="tab:green", label="p50")
    twin.plot(marks, [_pct(acked[s], 99) * 1000 for s in marks], color="tab:purple", label="p99")
    twin.set_yscale("log")
    twin.set_ylabel("ms to acknowledgement")
    _shade(ax, result, zero)
    ax.set_title(result.name)
    ax.set_xlabel("s")
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=6, loc="upper left")


def _failover(ax: Axes, result: Result) -> None:
    """Which gateway took the payments over time (by creation second), per gateway."""
    zero = result.began
    per: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for body in result.final.transactions.values():
        if body is None or not body.get("gateway"):
            continue
        created = datetime.fromisoformat(str(body["created_at"]).replace("Z", "+00:00"))
        per[str(body["gateway"])][int(created.timestamp() - zero)] += 1
    for gateway, counts in sorted(per.items()):
        xs = sorted(counts)
        ax.plot(xs, [counts[x] for x in xs], drawstyle="steps-mid", label=gateway,
                color=GATEWAY_COLOURS.get(gateway))  # fmt: skip
    _shade(ax, result, zero)
    ax.set_title(f"{result.name}: payments per gateway")
    ax.set_xlabel("s (payment created)")
    ax.set_ylabel("payments/s")
    ax.legend(fontsize=6, loc="upper left")


def chaos_charts(results: Sequence[Result], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    columns = 3
    rows = math.ceil(len(results) / columns)
    for name, draw in (("chaos-throughput-latency.png", _throughput_latency),
                       ("chaos-failover.png", _failover)):  # fmt: skip
        figure, axes = plt.subplots(rows, columns, figsize=(15, 3.2 * rows), squeeze=False)
        for ax, result in zip(axes.flat, results, strict=False):
            draw(ax, result)
        for ax in list(axes.flat)[len(results) :]:
            ax.set_visible(False)
        figure.tight_layout()
        path = directory / name
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written


def soak_charts(
    minutes: list[dict[str, Any]], rss: dict[str, list[tuple[float, int]]], directory: Path
) -> list[Path]:
    """Per minute: throughput, p50/p99; RSS of every process over time."""
    directory.mkdir(parents=True, exist_ok=True)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7))
    xs = [m["minute"] for m in minutes]
    top.bar(xs, [m["acknowledged"] / 60 for m in minutes], color="tab:gray", alpha=0.5,
            label="acknowledged/s")  # fmt: skip
    top.set_ylabel("ops/s")
    twin = top.twinx()
    twin.plot(xs, [m["p50_ms"] for m in minutes], color="tab:green", marker="o", label="p50")
    twin.plot(xs, [m["p99_ms"] for m in minutes], color="tab:purple", marker="o", label="p99")
    twin.set_ylabel("ms to acknowledgement")
    twin.set_ylim(bottom=0)
    top.set_xlabel("minute")
    top.set_title("soak: throughput and latency per minute")
    handles, more = top.get_legend_handles_labels(), twin.get_legend_handles_labels()
    top.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7, loc="upper left")
    for name, samples in sorted(rss.items()):
        if samples:
            zero = samples[0][0]
            bottom.plot([(t - zero) / 60 for t, _ in samples],
                        [kib / 1024 for _, kib in samples], label=name)  # fmt: skip
    bottom.set_xlabel("minute")
    bottom.set_ylabel("RSS (MiB)")
    bottom.set_title("soak: resident memory of every process")
    bottom.legend(fontsize=7, ncol=4)
    figure.tight_layout()
    path = directory / "soak.png"
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return [path]
