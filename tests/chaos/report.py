"""The per-scenario table (rich) printed at the end of a chaos run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.chaos.scenario import Result


def print_table(results: Sequence[Result]) -> None:
    table = Table(title="PixWave chaos: per scenario")
    columns = (
        "scenario", "requests", "acked", "succeeded", "failed (by reason)", "stuck",
        "duplicated", "imbalance", "extra charges", "recovery s", "alerts", "verdict",
    )  # fmt: skip
    for column in columns:
        table.add_column(column)
    for result in results:
        f = result.figures()
        failed = ", ".join(f"{k} {v}" for k, v in f["failed"].items()) or "0"
        alerts = ", ".join(f"{k.removeprefix('alert.')} {v}" for k, v in f["alerts"].items())
        table.add_row(
            result.name, str(f["requests"]), str(f["acknowledged"]), str(f["succeeded"]), failed,
            str(f["stuck"]), str(f["duplicated"]), str(f["imbalance"]), str(f["extra_charges"]),
            "–" if f["recovery_s"] is None else f"{f['recovery_s']:.1f}", alerts or "–",
            "[green]ok[/]" if result.verdict.ok else "[red]VIOLATIONS[/]",
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    for result in results:
        for violation in result.verdict.violations[:20]:
            console.print(f"[red]{result.name}[/]: {violation}")


def markdown_table(figures: Sequence[dict[str, Any]]) -> str:
    """The same table for docs/reliability.md, from each scenario's figures (the final JSON
    line of a run: ``python -m tests.chaos.report < run.log``)."""
    lines = [
        "| scenario | requests | acknowledged | succeeded | failed (by reason) | stuck | "
        "duplicated | imbalance | extra charges | recovery (s) | alerts |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        failed = ", ".join(f"{k}: {v}" for k, v in f["failed"].items()) or "0"
        alerts = ", ".join(f"`{k}` {v}" for k, v in f["alerts"].items()) or "–"
        recovery = "–" if f["recovery_s"] is None else f"{f['recovery_s']:.1f}"
        lines.append(
            f"| {f['scenario']} | {f['requests']} | {f['acknowledged']} | {f['succeeded']} | "
            f"{failed} | {f['stuck']} | {f['duplicated']} | {f['imbalance']} | "
            f"{f.get('extra_charges', 0)} | {recovery} | {alerts} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    last = [line for line in sys.stdin if line.startswith("{")][-1]
    print(markdown_table(json.loads(last)["scenarios"]))
