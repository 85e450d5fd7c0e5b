"""Benchmark: a no-op ``reconciler plan`` on a large generated configuration.

Run it as a script (it is not collected by pytest)::

    python tests/benchmarks/bench_noop_plan.py [--runs 5] [--lists 100] [--segments 100]

It writes a configuration of LISTS x SEGMENTS segments (three rules each, one of them a
nested ``any`` group, in flow mappings) into a temporary directory, applies it once to the
bundled ``reference`` provider (SQLite), then times a no-op
``plan --detailed-exitcode -q`` in a fresh child process RUNS times, with the child's peak
RSS read from ``os.wait4``. In the same run it times PyYAML's ``CSafeLoader`` over the same
files, as the yardstick the targets are stated against:

* no-op plan median wall time <= 0.55 x the PyYAML ``CSafeLoader`` median (GC on);
* peak RSS of the plan child <= 80 MiB;
* with ``--linear N`` (say 500 lists, 50,000 segments), one more configuration of N lists:
  its no-op plan takes at most 10 % more per segment than the main one, with a peak RSS
  <= 250 MiB.

The child runs as an installed package does: with Python's bytecode cache (pip compiles
it at install, and Python writes it on first import). ``PYTHONDONTWRITEBYTECODE`` is left
out of the child's environment, so that a checkout gets its cache from the warm-up apply
instead of compiling every module again on every timed run (some 60 ms here).

``--quick`` (for CI) runs a small configuration once: it proves the benchmark and the no-op
plan work, and reports figures without judging them (a small run measures start-up).

``--profile-phases`` also times load / validate / fetch / plan once in this process, and
``--cprofile N`` prints the top N functions by cumulative time of one in-process plan.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

YAML_RATIO_LIMIT = 0.55
PEAK_MIB_LIMIT = 80.0
LINEAR_SLACK = 1.10
"""At N times the segments, a no-op plan may take at most N x 1.1 times as long."""
LINEAR_PEAK_MIB_LIMIT = 250.0

OPS = ("contains", "ends_with", "not_contains", "starts_with")
FREQUENCIES = ("Weekly", "Monthly", "Daily")


# -- the generated configuration ------------------------------------------------------------


def root_yaml() -> str:
    return (
        "version: 1\n"
        "targets:\n"
        "  local:\n"
        "    provider: reference\n"
        "    path: state.db\n"
        "defaults:\n"
        "  target: local\n"
        "include:\n"
        "  - lists/*.yaml\n"
    )


def list_yaml(index: int, segments: int) -> str:
    """One list file: a custom field and SEGMENTS segments, each different from the others."""
    lines = [
        "lists:",
        f"  - name: List {index:03d}",
        "    fields:",
        "      - {name: Frequency, type: select, options: [Weekly, Monthly, Daily]}",
        "    segments:",
    ]
    for s in range(segments):
        n = index * segments + s
        op = OPS[n % len(OPS)]
        date = f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}"
        frequency = FREQUENCIES[n % len(FREQUENCIES)]
        lines += [
            f"      - name: Segment {index:03d}-{s:04d}",
            "        rules:",
            f'          - {{field: email, op: {op}, value: "@d{n}.com"}}',
            "          - any:",
            f'              - {{field: date_subscribed, op: after, value: "{date}"}}',
            f"              - {{field: Frequency, op: equals, value: {frequency}}}",
            f'          - {{field: first_name, op: not_equals, value: "name{s}"}}',
        ]
    return "\n".join(lines) + "\n"


def generate(directory: Path, lists: int, segments: int) -> list[Path]:
    """Write the root file and one file per list; return every YAML file written."""
    (directory / "lists").mkdir(parents=True, exist_ok=True)
    root = directory / "reconciler.yaml"
    root.write_text(root_yaml(), encoding="utf-8")
    files = [root]
    for index in range(lists):
        path = directory / "lists" / f"list{index:03d}.yaml"
        path.write_text(list_yaml(index, segments), encoding="utf-8")
        files.append(path)
    return files


# -- timing the CLI in a child process ------------------------------------------------------


def maxrss_mib(ru_maxrss: int) -> float:
    """``ru_maxrss`` is KiB on Linux and bytes on macOS."""
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


@dataclass
class ChildRun:
    seconds: float
    exit_code: int
    peak_mib: float
    stderr: str
    cpu_seconds: float = 0.0
    """User plus system CPU time of the child: steadier than wall time on a busy host."""


def run_cli(root: Path, *args: str, env: dict[str, str] | None = None) -> ChildRun:
    """``python -m reconciler -c ROOT ARGS`` in a fresh child; wall time and its own peak RSS."""
    command = [sys.executable, "-m", "reconciler", "-c", str(root), *args]
    if env is None:  # bytecode cached, as installed (see the module docstring)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(seconds, proc.returncode, maxrss_mib(usage.ru_maxrss), stderr, cpu)


def fail(message: str) -> None:
    print(f"bench_noop_plan: {message}", file=sys.stderr)
    raise SystemExit(1)


# -- the PyYAML yardstick -------------------------------------------------------------------


def time_pyyaml(texts: list[str], gc_enabled: bool) -> tuple[float, float]:
    """Wall and CPU seconds of PyYAML's CSafeLoader over ``texts``."""
    gc.collect()
    was_enabled = gc.isenabled()
    if not gc_enabled:
        gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        loaded = [yaml.load(text, Loader=yaml.CSafeLoader) for text in texts]
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        if was_enabled:
            gc.enable()
    del loaded
    gc.collect()
    return seconds, cpu


# -- in-process phases ----------------------------------------------------------------------


@contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - start


def in_process_plan(root: Path, phases: dict[str, float] | None = None) -> Any:
    """Load, validate, fetch and plan in this process, timing each phase into PHASES."""
    found: dict[str, float] = {} if phases is None else phases
    with timed(found, "import"):
        config_mod: Any = importlib.import_module("reconciler.config")
        workspace_mod: Any = importlib.import_module("reconciler.workspace")
        registry_mod: Any = importlib.import_module("reconciler.registry")
        provider_mod: Any = importlib.import_module("reconciler.provider")
        planning_mod: Any = importlib.import_module("reconciler.planning")
        try:
            validation_mod: Any = importlib.import_module("reconciler.validation")
        except ImportError:
            validation_mod = None
        registry = registry_mod.load_registry()
    with timed(found, "load_config"):
        config = config_mod.load_config(root)
    if validation_mod is not None:
        with timed(found, "validate"):
            validation_mod.validate_config(config, registry)
    context = provider_mod.ProviderContext(base_dir=root.resolve().parent)
    workspace = workspace_mod.Workspace(config, registry, context)
    try:
        with timed(found, "fetch"):
            live = workspace.fetch()
        with timed(found, "plan"):
            providers = {target: workspace.provider(target) for target in workspace.scope}
            result = planning_mod.plan(workspace.config, live, providers)
    finally:
        workspace.close()
    if result.changes:
        fail(f"in-process plan found {len(result.changes)} change(s); expected none")
    return result


def cprofile_top(root: Path, count: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(in_process_plan, root)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(count)
    return out.getvalue()


# -- report ---------------------------------------------------------------------------------


@dataclass
class Figures:
    lists: int
    segments: int
    files: int
    bytes: int
    lines: int
    runs: int
    apply_seconds: float
    plan_seconds: list[float]
    plan_peak_mib: list[float]
    pyyaml_gc_on_seconds: list[float]
    pyyaml_gc_off_seconds: list[float]
    plan_cpu_seconds: list[float] = field(default_factory=list)
    pyyaml_cpu_seconds: list[float] = field(default_factory=list)
    python: str = sys.version.split()[0]
    phases: dict[str, float] = field(default_factory=dict)
    quick: bool = False
    linear_lists: int = 0
    linear_seconds: float = 0.0
    linear_peak_mib: float = 0.0

    @property
    def plan_median(self) -> float:
        return statistics.median(self.plan_seconds)

    @property
    def yaml_median(self) -> float:
        return statistics.median(self.pyyaml_gc_on_seconds)

    def verdicts(self) -> list[tuple[str, bool, str]]:
        if self.quick:
            return []  # a small configuration measures start-up: nothing to judge
        ratio = self.plan_median / self.yaml_median
        peak = max(self.plan_peak_mib)
        found = [
            (
                f"no-op plan <= {YAML_RATIO_LIMIT:g}x PyYAML CSafeLoader (GC on)",
                ratio <= YAML_RATIO_LIMIT,
                f"{ratio:.2f}x ({self.plan_median:.3f} s / {self.yaml_median:.3f} s)",
            ),
            (f"peak RSS <= {PEAK_MIB_LIMIT:g} MiB", peak <= PEAK_MIB_LIMIT, f"{peak:.1f} MiB"),
        ]
        if self.linear_lists:
            scale = self.linear_lists / self.lists
            per = self.linear_seconds / (scale * self.plan_median)
            found += [
                (
                    f"{scale:g}x the segments: no-op plan <= {LINEAR_SLACK:g} x linear",
                    per <= LINEAR_SLACK,
                    f"{per:.2f} x ({self.linear_seconds:.3f} s vs {scale:g} x "
                    f"{self.plan_median:.3f} s)",
                ),
                (
                    f"{scale:g}x the segments: peak RSS <= {LINEAR_PEAK_MIB_LIMIT:g} MiB",
                    self.linear_peak_mib <= LINEAR_PEAK_MIB_LIMIT,
                    f"{self.linear_peak_mib:.1f} MiB",
                ),
            ]
        return found

    def document(self) -> dict[str, Any]:
        summary = {
            "plan_min_seconds": min(self.plan_seconds),
            "plan_median_seconds": self.plan_median,
            "plan_peak_mib_max": max(self.plan_peak_mib),
            "pyyaml_gc_on_median_seconds": self.yaml_median,
            "pyyaml_gc_off_median_seconds": statistics.median(self.pyyaml_gc_off_seconds),
            "plan_to_pyyaml_ratio": self.plan_median / self.yaml_median,
        }
        verdicts = [
            {"target": name, "pass": ok, "measured": measured}
            for name, ok, measured in self.verdicts()
        ]
        return {**asdict(self), "summary": summary, "verdicts": verdicts}


def render(figures: Figures) -> str:
    def row(name: str, values: list[float], unit: str, scale: float = 1.0) -> str:
        lo, mid = min(values) * scale, statistics.median(values) * scale
        return f"{name:<40} {lo:>10.3f} {mid:>10.3f}  {unit}"

    out = [
        f"config: {figures.lists} lists x {figures.segments} segments = "
        f"{figures.lists * figures.segments} segments; {figures.files} files, "
        f"{figures.bytes / 1e6:.2f} MB, {figures.lines} lines; Python {figures.python}; "
        f"{figures.runs} runs",
        f"initial apply: {figures.apply_seconds:.2f} s",
        "",
        f"{'measure':<40} {'min':>10} {'median':>10}",
        row("no-op plan (child, wall)", figures.plan_seconds, "s"),
        row("no-op plan peak RSS (child)", figures.plan_peak_mib, "MiB"),
        row("PyYAML CSafeLoader, GC on", figures.pyyaml_gc_on_seconds, "s"),
        row("PyYAML CSafeLoader, GC off (info)", figures.pyyaml_gc_off_seconds, "s"),
    ]
    if figures.plan_cpu_seconds and figures.pyyaml_cpu_seconds:
        cpu = statistics.median(figures.plan_cpu_seconds)
        yardstick = statistics.median(figures.pyyaml_cpu_seconds)
        out += [
            row("no-op plan CPU (child, info)", figures.plan_cpu_seconds, "s"),
            row("PyYAML CSafeLoader CPU, GC on (info)", figures.pyyaml_cpu_seconds, "s"),
            f"CPU ratio (info, steadier on a busy host): {cpu / yardstick:.2f}x",
        ]
    if figures.linear_lists:
        out.append(
            f"{figures.linear_lists * figures.segments} segments: no-op plan "
            f"{figures.linear_seconds:.3f} s, {figures.linear_peak_mib:.1f} MiB (one run)"
        )
    if figures.quick:
        out.append("quick mode: a small configuration, figures reported and not judged")
    if figures.phases:
        out += ["", "in-process phases (one run):"]
        out += [f"  {name:<38} {seconds:>10.3f}  s" for name, seconds in figures.phases.items()]
    out.append("")
    out += [
        f"{'PASS' if ok else 'FAIL'}  {name}: {measured}"
        for name, ok, measured in figures.verdicts()
    ]
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--lists", type=int, default=100, help="lists (default 100)")
    parser.add_argument("--segments", type=int, default=100, help="segments per list (100)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile-phases",
        action="store_true",
        help="also time load/validate/fetch/plan once in-process",
    )
    parser.add_argument(
        "--cprofile",
        type=int,
        metavar="N",
        default=0,
        help="print the top N cumulative functions of one in-process plan",
    )
    parser.add_argument("--dir", type=Path, help="work here instead of a temporary directory")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--linear",
        type=int,
        metavar="LISTS",
        default=0,
        help="also time one no-op plan of LISTS lists (500: 50,000 segments) for linearity",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI mode: 10 lists x 20 segments, one run, figures not judged",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.lists, args.segments, args.runs, args.linear = 10, 20, 1, 0
    if args.runs < 1 or args.lists < 1 or args.segments < 1 or args.linear < 0:
        parser.error("--runs, --lists and --segments must be at least 1")
    return args


def linear_run(directory: Path, lists: int, segments: int, say: Callable[[str], None]) -> ChildRun:
    """One no-op plan of a bigger configuration, in its own directory under ``directory``."""
    bigger = directory / "linear"
    for stale in [*bigger.glob("state.db*"), *bigger.glob("lists/list*.yaml")]:
        stale.unlink()
    root = generate(bigger, lists, segments)[0]
    applied = run_cli(root, "apply", "--auto-approve", "-q")
    if applied.exit_code != 0:
        fail(f"apply of {lists} lists exited {applied.exit_code}:\n{applied.stderr}")
    run = run_cli(root, "plan", "--detailed-exitcode", "-q")
    if run.exit_code != 0:
        fail(f"no-op plan of {lists} lists exited {run.exit_code}:\n{run.stderr}")
    say(f"{lists} lists: applied in {applied.seconds:.2f} s, no-op plan {run.seconds:.3f} s")
    return run


def benchmark(args: argparse.Namespace, directory: Path, say: Callable[[str], None]) -> Figures:
    files = generate(directory, args.lists, args.segments)
    texts = [path.read_text(encoding="utf-8") for path in files]
    root = files[0]
    say(f"generated {len(files)} files in {directory}")

    applied = run_cli(root, "apply", "--auto-approve", "-q")
    if applied.exit_code != 0:
        fail(f"apply exited {applied.exit_code}:\n{applied.stderr}")
    say(f"applied in {applied.seconds:.2f} s")

    # Interleaved, so that a change in machine load hits both sides of the ratio alike.
    plan_runs: list[ChildRun] = []
    gc_on: list[float] = []
    gc_on_cpu: list[float] = []
    gc_off: list[float] = []
    for number in range(args.runs):
        run = run_cli(root, "plan", "--detailed-exitcode", "-q")
        if run.exit_code != 0:
            fail(
                f"no-op plan run {number + 1} exited {run.exit_code} (0 = no changes):\n"
                f"{run.stderr}"
            )
        plan_runs.append(run)
        wall, cpu = time_pyyaml(texts, gc_enabled=True)
        gc_on.append(wall)
        gc_on_cpu.append(cpu)
        gc_off.append(time_pyyaml(texts, gc_enabled=False)[0])
        say(
            f"run {number + 1}/{args.runs}: plan {run.seconds:.3f} s, {run.peak_mib:.1f} MiB; "
            f"PyYAML {gc_on[-1]:.3f} s (GC on), {gc_off[-1]:.3f} s (GC off)"
        )

    figures = Figures(
        lists=args.lists,
        segments=args.segments,
        files=len(files),
        bytes=sum(len(text.encode("utf-8")) for text in texts),
        lines=sum(text.count("\n") for text in texts),
        runs=args.runs,
        apply_seconds=applied.seconds,
        plan_seconds=[run.seconds for run in plan_runs],
        plan_peak_mib=[run.peak_mib for run in plan_runs],
        pyyaml_gc_on_seconds=gc_on,
        pyyaml_gc_off_seconds=gc_off,
        plan_cpu_seconds=[run.cpu_seconds for run in plan_runs],
        pyyaml_cpu_seconds=gc_on_cpu,
        quick=args.quick,
    )
    if args.linear:
        run = linear_run(directory, args.linear, args.segments, say)
        figures.linear_lists = args.linear
        figures.linear_seconds = run.seconds
        figures.linear_peak_mib = run.peak_mib
    if args.profile_phases:
        in_process_plan(root, figures.phases)
    if args.cprofile:
        say(cprofile_top(root, args.cprofile))
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        for stale in [*args.dir.glob("state.db*"), *args.dir.glob("lists/list*.yaml")]:
            stale.unlink()  # a fresh backend and no lists left over from a bigger run
        figures = benchmark(args, args.dir, say)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-noop-plan-") as temp:
            figures = benchmark(args, Path(temp), say)
    say(render(figures))
    if args.json:
        print(json.dumps(figures.document(), indent=2))
    if args.strict and not all(ok for _, ok, _ in figures.verdicts()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
