"""Benchmark: ``reconciler apply`` of 10,000 segment creates on the reference backend.

Run it as a script (it is not collected by pytest)::

    python tests/benchmarks/bench_reference_apply.py [--runs 5] [--lists 100] [--segments 100]
    python tests/benchmarks/bench_reference_apply.py --quick --strict     # for CI

It writes the configuration ``bench_noop_plan.py`` generates (LISTS x SEGMENTS segments,
three rules each, one of them a nested ``any`` group), then RUNS times, each on a fresh
store: times ``apply --auto-approve -q`` (one list, one field and SEGMENTS segments
created per list, then the convergence re-read) in a fresh child process, and right after
it the no-op ``plan --detailed-exitcode -q`` of the same configuration, also in a fresh
child. Peak RSS of each child comes from ``os.wait4``. Target, from medians of the same
run:

* apply of the creates <= 3 x the no-op plan.

``--quick`` is 10 lists x 20 segments and 3 runs (it checks that the script works, not the
target's figures). ``--json`` prints the figures as JSON (the table goes to stderr);
``--strict`` exits with 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    from tests.benchmarks.bench_noop_plan import ChildRun, generate, run_cli
except ImportError:  # run as a script: this directory is on sys.path, the repository not
    from bench_noop_plan import ChildRun, generate, run_cli  # type: ignore[no-redef]

RATIO_LIMIT = 3.0
QUICK = {"lists": 10, "segments": 20, "runs": 3}


@dataclass
class Figures:
    lists: int
    segments: int
    runs: int
    changes: int
    apply_seconds: list[float] = field(default_factory=list)
    apply_peak_mib: list[float] = field(default_factory=list)
    plan_seconds: list[float] = field(default_factory=list)
    plan_peak_mib: list[float] = field(default_factory=list)
    python: str = sys.version.split()[0]

    @property
    def ratio(self) -> float:
        return statistics.median(self.apply_seconds) / statistics.median(self.plan_seconds)

    def verdicts(self) -> list[tuple[str, bool, str]]:
        apply_median = statistics.median(self.apply_seconds)
        plan_median = statistics.median(self.plan_seconds)
        return [
            (
                f"apply of {self.changes} changes <= {RATIO_LIMIT:g}x the no-op plan",
                self.ratio <= RATIO_LIMIT,
                f"{self.ratio:.2f}x ({apply_median:.3f} s / {plan_median:.3f} s)",
            )
        ]

    def document(self) -> dict[str, Any]:
        summary = {
            "apply_median_seconds": statistics.median(self.apply_seconds),
            "apply_peak_mib_max": max(self.apply_peak_mib),
            "plan_median_seconds": statistics.median(self.plan_seconds),
            "plan_peak_mib_max": max(self.plan_peak_mib),
            "apply_to_plan_ratio": self.ratio,
            "apply_ms_per_change": 1000 * statistics.median(self.apply_seconds) / self.changes,
        }
        verdicts = [
            {"target": name, "pass": ok, "measured": measured}
            for name, ok, measured in self.verdicts()
        ]
        return {**asdict(self), "summary": summary, "verdicts": verdicts}


def render(figures: Figures) -> str:
    def row(name: str, values: list[float], unit: str) -> str:
        low, middle = min(values), statistics.median(values)
        return f"{name:<36} {low:>10.3f} {middle:>10.3f}  {unit}"

    out = [
        f"config: {figures.lists} lists x {figures.segments} segments = "
        f"{figures.lists * figures.segments} segments ({figures.changes} changes to apply); "
        f"Python {figures.python}; {figures.runs} runs, a fresh store each",
        "",
        f"{'measure':<36} {'min':>10} {'median':>10}",
        row("apply of the creates (child, wall)", figures.apply_seconds, "s"),
        row("apply peak RSS (child)", figures.apply_peak_mib, "MiB"),
        row("no-op plan after it (child, wall)", figures.plan_seconds, "s"),
        row("no-op plan peak RSS (child)", figures.plan_peak_mib, "MiB"),
        "",
    ]
    out += [
        f"{'PASS' if ok else 'FAIL'}  {name}: {measured}"
        for name, ok, measured in figures.verdicts()
    ]
    return "\n".join(out)


def fail(message: str) -> None:
    print(f"bench_reference_apply: {message}", file=sys.stderr)
    raise SystemExit(1)


def checked(run: ChildRun, what: str) -> ChildRun:
    if run.exit_code != 0:
        fail(f"{what} exited {run.exit_code} (expected 0):\n{run.stderr[-4000:]}")
    return run


def fresh_store(directory: Path) -> None:
    for stale in directory.glob("state.db*"):
        stale.unlink()


def benchmark(args: argparse.Namespace, directory: Path, say: Callable[[str], None]) -> Figures:
    files = generate(directory, args.lists, args.segments)
    root = files[0]
    say(f"generated {len(files)} files in {directory}")
    # Per list: the list, its field and its segments.
    figures = Figures(args.lists, args.segments, args.runs, args.lists * (args.segments + 2))
    for number in range(1, args.runs + 1):
        fresh_store(directory)
        applied = checked(run_cli(root, "apply", "--auto-approve", "-q"), f"apply {number}")
        planned = checked(run_cli(root, "plan", "--detailed-exitcode", "-q"), f"plan {number}")
        figures.apply_seconds.append(applied.seconds)
        figures.apply_peak_mib.append(applied.peak_mib)
        figures.plan_seconds.append(planned.seconds)
        figures.plan_peak_mib.append(planned.peak_mib)
        say(
            f"run {number}/{args.runs}: apply {applied.seconds:.3f} s, "
            f"{applied.peak_mib:.1f} MiB; no-op plan {planned.seconds:.3f} s, "
            f"{planned.peak_mib:.1f} MiB"
        )
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--lists", type=int, default=100, help="lists (default 100)")
    parser.add_argument("--segments", type=int, default=100, help="segments per list (100)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['lists']} lists x {QUICK['segments']} segments, {QUICK['runs']} runs",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--dir", type=Path, help="work here (kept) instead of a temporary dir")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.lists, args.segments, args.runs = QUICK["lists"], QUICK["segments"], QUICK["runs"]
    if args.runs < 1 or args.lists < 1 or args.segments < 1:
        parser.error("--runs, --lists and --segments must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        for stale in args.dir.glob("lists/list*.yaml"):
            stale.unlink()  # no lists left over from a bigger run
        figures = benchmark(args, args.dir, say)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-reference-apply-") as temp:
            figures = benchmark(args, Path(temp), say)
    say(render(figures))
    if args.json:
        print(json.dumps(figures.document(), indent=2))
    if args.strict and not all(ok for _, ok, _ in figures.verdicts()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
