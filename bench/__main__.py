"""``make bench``: run every benchmark, take the median of runs, rewrite bench/RESULTS.md.

Timings live here and in RESULTS.md, never in test assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import importlib
import importlib.util
import statistics
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.common import Figure, host_speed_s, machine

BENCHES = ("router", "phone", "mail", "scan", "sla")
RESULTS = Path(__file__).with_name("RESULTS.md")


def _available() -> list[str]:
    return [name for name in BENCHES if importlib.util.find_spec(f"bench.{name}") is not None]


def _median(runs: list[list[Figure]]) -> list[Figure]:
    first = runs[0]
    return [
        Figure(f.name, statistics.median(r[i].measured for r in runs), f.unit, f.target, f.higher)
        for i, f in enumerate(first)
    ]


def _row(bench: str, figure: Figure, runs: int, where: str, when: str) -> str:
    target = "-" if figure.target is None else f"{'≥' if figure.higher else '≤'} {figure.target:g}"
    status = {True: "met", False: "**not met**", None: "-"}[figure.met]
    cells = (figure.name, f"{target} {figure.unit}", f"{figure.measured:.1f} {figure.unit}")
    return "| " + " | ".join((bench, *cells, status, str(runs), where, when)) + " |"


def _kept_rows(previous: str, rerun: set[str]) -> list[str]:
    """Rows of the previous table whose benchmark was not run this time."""
    rows = [line for line in previous.split("<!-- notes -->", 1)[0].splitlines()]
    table = [row for row in rows if row.startswith("| ") and not row.startswith("| bench |")]
    return [
        row
        for row in table
        if row.split(" | ", 1)[0][2:] in BENCHES and row.split(" | ", 1)[0][2:] not in rerun
    ]


def main() -> None:
    """Run the benchmarks named on the command line (all by default) and write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=_available())
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    where, when = machine(), dt.date.today().isoformat()
    rows: list[str] = []
    for name in args.names:
        run: Callable[[], Coroutine[Any, Any, list[Figure]]]
        run = importlib.import_module(f"bench.{name}").run
        results: list[list[Figure]] = []
        for _ in range(args.runs):
            speed = Figure(
                "host speed before the run: 10M Python additions", host_speed_s() * 1000, "ms"
            )
            results.append([*asyncio.run(run()), dataclasses.replace(speed, higher=False)])
        for figure in _median(results):
            print(f"{figure.name}: {figure.measured:.1f} {figure.unit} (target {figure.target})")
            rows.append(_row(name, figure, args.runs, where, when))
    header = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`): each figure is the median of its runs.",
        "Targets come from the issues; a target not met is stated, not hidden.",
        "",
        "| bench | figure | target | measured | status | runs | machine | date |",
        "|---|---|---|---|---|---|---|---|",
    ]
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    rows = sorted(
        _kept_rows(previous, set(args.names)) + rows,
        key=lambda r: BENCHES.index(r.split(" | ", 1)[0][2:]),
    )
    notes = previous.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in previous else "\n"
    RESULTS.write_text("\n".join([*header, *rows, "", "<!-- notes -->"]) + notes, encoding="utf-8")


if __name__ == "__main__":
    main()
