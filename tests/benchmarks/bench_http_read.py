"""Benchmark: the HTTP read path of a real provider (Campaign Monitor) at 50 ms per request.

Run it as a script (it is not collected by pytest)::

    python tests/benchmarks/bench_http_read.py            # 1,000 segments, concurrency 16
    python tests/benchmarks/bench_http_read.py --quick    # 400 segments (CI, seconds)
    python tests/benchmarks/bench_http_read.py --json --strict

A child process serves the tests' stateful Campaign Monitor fake over real HTTP on
127.0.0.1, answering every request after ``--latency`` (``slow_server.py``). The script
reads a list of SEGMENTS segments through ``CampaignMonitorProvider.fetch`` (the client's
list of lists, the list's fields and segments, then every segment's details) at
``max_concurrency`` CONCURRENCY, RUNS times, and checks every segment came back. Targets,
on the median run:

* wall time <= 1.25 x the floor (requests x latency / concurrency);
* client CPU <= 0.5 ms per request (``time.process_time`` of this process, all threads;
  the server's CPU is in its own process and not counted).

For scale, each run also makes the same GETs with a bare ``httpx.Client`` on as many
threads (no retry layer, no provider): its CPU per request is the floor the HTTP stack
itself sets on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from providers.campaignmonitor import CampaignMonitorProvider  # noqa: E402
from reconciler.provider import ProviderContext, Scope  # noqa: E402
from tests.benchmarks.slow_server import LIST, Running, serve  # noqa: E402

WALL_RATIO = 1.25
CPU_MS_PER_REQUEST = 0.5


def read_once(server: Running, concurrency: int, segments: int) -> dict[str, float]:
    """One read of the list through a fresh provider: wall and CPU seconds, requests."""
    settings = {
        "api_key": server.api_key,
        "client_id": server.client_id,
        "base_url": server.base_url,
    }
    context = ProviderContext(max_concurrency=concurrency)
    provider = CampaignMonitorProvider(
        "bench", CampaignMonitorProvider.settings_model.model_validate(settings), context
    )
    server.stats(reset=True)
    with provider:
        cpu = time.process_time()
        wall = time.perf_counter()
        live = provider.fetch(Scope(frozenset({LIST})))
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    (found,) = live.lists
    if len(found.segments) != segments:
        raise SystemExit(f"read {len(found.segments)} segments, expected {segments}")
    requests = sum(server.stats()["requests"].values())
    return {"wall_s": wall, "cpu_s": cpu, "requests": requests}


def bare_once(server: Running, concurrency: int) -> dict[str, float]:
    """The same GETs through a bare ``httpx.Client`` on ``concurrency`` threads."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    auth = httpx.BasicAuth(server.api_key, "x")
    with httpx.Client(base_url=server.base_url, auth=auth, limits=limits) as client:
        cpu = time.process_time()
        wall = time.perf_counter()
        (found,) = client.get(f"/clients/{server.client_id}/lists.json").json()
        list_id = found["ListID"]
        with ThreadPoolExecutor(concurrency) as pool:
            paths = [f"/lists/{list_id}/customfields.json", f"/lists/{list_id}/segments.json"]
            _, segments = pool.map(lambda path: client.get(path).json(), paths)
            paths = [f"/segments/{s['SegmentID']}.json" for s in segments]
            list(pool.map(lambda path: client.get(path).json(), paths))
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "requests": 3 + len(paths)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="400 segments (CI)")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.segments = min(args.segments, 400)

    runs: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    with serve(args.latency, segments=args.segments) as server:
        read_once(server, args.concurrency, args.segments)  # warm up: imports, connections
        for _ in range(args.runs):
            runs.append(read_once(server, args.concurrency, args.segments))
            bare.append(bare_once(server, args.concurrency))

    figures = _figures(runs, args)
    bare_cpu = statistics.median(1000 * r["cpu_s"] / r["requests"] for r in bare)
    figures["bare_httpx_cpu_ms_per_request"] = round(bare_cpu, 4)
    figures["cpu_vs_bare_httpx"] = round(figures["cpu_ms_per_request"] / bare_cpu, 3)
    lines = [
        f"read {args.segments} segments at max_concurrency {args.concurrency}, "
        f"{args.latency * 1000:.0f} ms per request, median of {args.runs}: "
        f"{figures['wall_s']:.2f} s for {figures['requests']} requests "
        f"(floor {figures['floor_s']:.2f} s, x{figures['wall_ratio']:.2f}); "
        f"client CPU {figures['cpu_ms_per_request']:.3f} ms per request (a bare httpx.Client "
        f"making the same GETs: {figures['bare_httpx_cpu_ms_per_request']:.3f} ms)",
        f"{'PASS' if figures['wall_ok'] else 'FAIL'}: wall <= {WALL_RATIO} x floor",
        f"{'PASS' if figures['cpu_ok'] else 'FAIL'}: CPU <= {CPU_MS_PER_REQUEST} ms per request",
    ]
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(figures, indent=2))
    passed = figures["wall_ok"] and figures["cpu_ok"]
    return 1 if args.strict and not passed else 0


def _figures(runs: list[dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    requests = int(statistics.median(r["requests"] for r in runs))
    wall = statistics.median(r["wall_s"] for r in runs)
    cpu_ms = statistics.median(1000 * r["cpu_s"] / r["requests"] for r in runs)
    floor = requests * args.latency / args.concurrency
    return {
        "segments": args.segments,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "runs": len(runs),
        "requests": requests,
        "wall_s": round(wall, 3),
        "walls_s": [round(r["wall_s"], 3) for r in runs],
        "floor_s": round(floor, 3),
        "wall_ratio": round(wall / floor, 3),
        "cpu_ms_per_request": round(cpu_ms, 4),
        "wall_ok": wall <= WALL_RATIO * floor,
        "cpu_ok": cpu_ms <= CPU_MS_PER_REQUEST,
    }


if __name__ == "__main__":
    sys.exit(main())
