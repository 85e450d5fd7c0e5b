"""Benchmark: ``apply`` of many creates against an HTTP platform at 50 ms per request.

Run it as a script (it is not collected by pytest)::

    python tests/benchmarks/bench_http_apply.py             # 1,000 creates, concurrency 16
    python tests/benchmarks/bench_http_apply.py --quick     # 200 creates (CI, seconds)
    python tests/benchmarks/bench_http_apply.py --sweep 1,4,8,16 --segments 400
    python tests/benchmarks/bench_http_apply.py --json --strict

Each run starts a child process serving the tests' stateful Campaign Monitor fake over real
HTTP on 127.0.0.1 with an empty list, every answer after ``--latency``
(``slow_server.py``), and does what ``reconciler apply --auto-approve`` does through the
library: plan SEGMENTS creates, apply them, and check convergence (the re-read of what was
written). Checks: every change applied, the server received exactly one POST per create,
and the convergence check passed. Target, on the median of RUNS runs: the wall time of the
apply and its re-read <= 2 x the floor (every request they made x latency / concurrency).
The plan before (its three requests and its CPU work) is timed apart: ``plan`` has its own
benchmark.

``--sweep`` measures several concurrencies (one run each) to compare them: wall time,
requests per second and the client's CPU per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from providers.campaignmonitor import CampaignMonitorProvider  # noqa: E402
from reconciler.provider import ProviderContext  # noqa: E402
from reconciler.workspace import Workspace  # noqa: E402
from tests.benchmarks.slow_server import LIST, Running, serve  # noqa: E402

WALL_RATIO = 2.0


def config_text(server: Running, segments: int, concurrency: int) -> str:
    lines = [
        "version: 1",
        "targets:",
        "  bench:",
        "    provider: campaignmonitor",
        f"    api_key: {server.api_key}",
        f"    client_id: {server.client_id}",
        f"    base_url: {server.base_url}",
        f"    max_concurrency: {concurrency}",
        "defaults: {target: bench}",
        "lists:",
        f"  - name: {LIST}",
        "    segments:",
    ]
    for i in range(segments):
        lines.append(
            f'      - {{name: "Segment {i}", rules: [{{field: email, op: contains, '
            f'value: "@x{i}.com"}}]}}'
        )
    return "\n".join(lines) + "\n"


def apply_once(latency: float, segments: int, concurrency: int) -> dict[str, Any]:
    """Plan, apply and check one fresh list of ``segments`` creates; the figures."""
    registry = {"campaignmonitor": CampaignMonitorProvider}
    with serve(latency) as server, tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "reconciler.yaml"
        path.write_text(config_text(server, segments, concurrency))
        ws = Workspace.open(path, registry, ProviderContext(base_dir=Path(directory)))
        try:
            started = time.perf_counter()
            current = ws.plan()
            server.stats(reset=True)
            cpu = time.process_time()
            planned = time.perf_counter()
            result = ws.apply(current)
            applied = time.perf_counter()
            ws.check_converged()
            ended = time.perf_counter()
            cpu = time.process_time() - cpu
        finally:
            ws.close()
        counts = server.stats()["requests"]
    if len(current.changes) != segments or result.count("applied") != segments:
        raise SystemExit(f"expected {segments} creates applied: {result.count('applied')}")
    return {
        "wall_s": ended - planned,
        "plan_s": planned - started,
        "apply_s": applied - planned,
        "converge_s": ended - applied,
        "cpu_s": cpu,
        "requests": sum(counts.values()),
        "posts": counts.get("POST", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 creates (CI)")
    parser.add_argument("--sweep", help="comma-separated concurrencies to compare")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.segments = min(args.segments, 200)
    out = sys.stderr if args.json else sys.stdout
    if args.sweep:
        return _sweep(args, [int(c) for c in args.sweep.split(",")], out)

    runs = [apply_once(args.latency, args.segments, args.concurrency) for _ in range(args.runs)]
    figures = _figures(runs, args)
    print(
        f"apply of {args.segments} creates at max_concurrency {args.concurrency}, "
        f"{args.latency * 1000:.0f} ms per request, median of {args.runs}: "
        f"{figures['wall_s']:.2f} s (apply {figures['apply_s']:.2f}, re-read "
        f"{figures['converge_s']:.2f}) for {figures['requests']} requests (floor "
        f"{figures['floor_s']:.2f} s, x{figures['wall_ratio']:.2f}); {figures['posts']} POSTs; "
        f"the plan before took {figures['plan_s']:.2f} s",
        file=out,
    )
    print(f"{'PASS' if figures['wall_ok'] else 'FAIL'}: wall <= {WALL_RATIO} x floor", file=out)
    print(f"{'PASS' if figures['writes_ok'] else 'FAIL'}: one POST per create", file=out)
    if args.json:
        print(json.dumps(figures, indent=2))
    passed = figures["wall_ok"] and figures["writes_ok"]
    return 1 if args.strict and not passed else 0


def _figures(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    requests = int(median("requests"))
    floor = requests * args.latency / args.concurrency
    return {
        "segments": args.segments,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "runs": len(runs),
        "requests": requests,
        "posts": int(median("posts")),
        "wall_s": round(median("wall_s"), 3),
        "walls_s": [round(r["wall_s"], 3) for r in runs],
        "plan_s": round(median("plan_s"), 3),
        "apply_s": round(median("apply_s"), 3),
        "converge_s": round(median("converge_s"), 3),
        "floor_s": round(floor, 3),
        "wall_ratio": round(median("wall_s") / floor, 3),
        "cpu_ms_per_request": round(1000 * median("cpu_s") / requests, 3),
        "wall_ok": median("wall_s") <= WALL_RATIO * floor,
        "writes_ok": all(r["posts"] == args.segments for r in runs),
    }


def _sweep(args: argparse.Namespace, levels: list[int], out: Any) -> int:
    rows = []
    for level in levels:
        run = apply_once(args.latency, args.segments, level)
        rows.append(
            {
                "concurrency": level,
                "wall_s": round(run["wall_s"], 3),
                "apply_s": round(run["apply_s"], 3),
                "requests_per_s": round(run["requests"] / run["wall_s"], 1),
                "cpu_ms_per_request": round(1000 * run["cpu_s"] / run["requests"], 3),
                "posts": run["posts"],
            }
        )
        print(
            f"concurrency {level:>3}: {run['wall_s']:6.2f} s (apply {run['apply_s']:.2f} s), "
            f"{rows[-1]['requests_per_s']:6.1f} requests/s, "
            f"CPU {rows[-1]['cpu_ms_per_request']:.2f} ms per request",
            file=out,
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
