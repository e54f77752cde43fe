"""`python -m tests.chaos run|soak`: the chaos suite and the soak (docs/reliability.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.chaos.cluster import running
from tests.chaos.report import print_table
from tests.chaos.scenario import (
    FULL,
    SCENARIOS,
    SHORT,
    Options,
    Result,
    admin_token,
    run_scenario,
    write,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability"


def run_all(names: Sequence[str], options: Options, workdir: Path, *, workers: int,
            api_processes: int) -> list[Result]:  # fmt: skip
    results: list[Result] = []
    with running(workdir / "cluster", workers=workers, api_processes=api_processes) as cluster:
        admin = admin_token(cluster)
        earlier: set[str] = set()
        for name in names:
            print(f"scenario {name}: {options.rate:g} ops/s for {options.seconds:g} s", flush=True)
            result = asyncio.run(run_scenario(cluster, name, options, earlier, admin))
            earlier |= {op.transaction_id for op in result.history.ops if op.transaction_id}
            write(result, workdir / "results")
            verdict = result.verdict
            print(f"  {'ok' if verdict.ok else 'VIOLATIONS'}: {json.dumps(result.figures())}",
                  flush=True)  # fmt: skip
            results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="every scenario one at a time, then combined")
    run.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only these (repeatable); default: every fault alone, then combined",
    )
    run.add_argument("--short", action="store_true", help="the CI set: each kind, combined")
    run.add_argument("--rate", type=float, default=8.0, help="operations per second")
    run.add_argument("--seconds", type=float, default=25.0, help="seconds of load per scenario")
    run.add_argument("--sweep", type=float, default=60.0, help="seconds for payments to finish")
    run.add_argument("--wallets", type=int, default=12)
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--workers", type=int, default=2, help="`pixwave worker` processes")
    run.add_argument("--api-processes", type=int, default=2)
    run.add_argument("--charts", type=Path, default=DOCS, help="where the PNG charts go")
    run.add_argument("--no-charts", action="store_true")
    run.add_argument("--keep", type=Path, help="keep logs and histories in this directory")
    soak = sub.add_parser("soak", help="a long steady run: memory, latency, errors")
    soak.add_argument("--minutes", type=float, default=30.0)
    soak.add_argument("--rate", type=float, default=0.0, help="ops/s (0: half the capacity)")
    soak.add_argument("--ramp-seconds", type=float, default=20.0, help="each capacity step")
    soak.add_argument("--wallets", type=int, default=40)
    soak.add_argument("--workers", type=int, default=2)
    soak.add_argument("--api-processes", type=int, default=2)
    soak.add_argument("--charts", type=Path, default=DOCS)
    soak.add_argument("--keep", type=Path)
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pixwave-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {workdir}", flush=True)
    started = time.monotonic()
    if args.command == "soak":
        from tests.chaos.soak import soak as run_soak

        return run_soak(args, workdir)
    names = args.scenario or (SHORT if args.short else FULL)
    options = Options(rate=args.rate, seconds=args.seconds, sweep=args.sweep,
                      wallets=args.wallets, seed=args.seed)  # fmt: skip
    results = run_all(names, options, workdir, workers=args.workers,
                      api_processes=args.api_processes)  # fmt: skip
    print_table(results)
    if not args.no_charts:
        from tests.chaos.charts import chaos_charts

        for path in chaos_charts(results, args.charts):
            print(f"chart: {path}")
    bad = [r.name for r in results if not r.verdict.ok]
    print(json.dumps({
        "suite": "chaos", "rate": args.rate, "seconds": args.seconds, "ok": not bad,
        "failed_scenarios": bad, "total_s": round(time.monotonic() - started),
        "scenarios": [r.figures() for r in results],
    }))  # fmt: skip
    return 1 if bad else 0


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: every process it started is stopped first."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process the run started is stopped", file=sys.stderr)
        sys.exit(130)
