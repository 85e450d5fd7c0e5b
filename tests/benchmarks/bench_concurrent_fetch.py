"""Benchmark: concurrent segment reads through the shared HTTP layer.

Run it as a script (it is not collected by pytest)::

    python tests/benchmarks/bench_concurrent_fetch.py [--items 1000] [--concurrency 16]

It starts a real HTTP server on 127.0.0.1 (a random free port, in a thread) that answers
``GET /segments/{id}.json`` after ``--latency`` seconds (50 ms), then times
``HttpClient.map_concurrent`` fetching ITEMS segments at CONCURRENCY, and, for comparison,
SERIAL_ITEMS segments one at a time (extrapolated to ITEMS, so the run stays short). Target:

* ITEMS = 1,000 at ``max_concurrency: 16`` in <= 5 s (one at a time takes about 50 s).

The answers are checked (each segment comes back with its own id, in order). The server
and the client are shut down before the script exits; ``--strict`` exits with 1 when the
target is missed (for CI).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from providers._http import HttpClient
from reconciler.provider import ProviderContext

SECONDS_LIMIT = 5.0
_PATH = re.compile(r"^/segments/(\d+)\.json$")


class SlowSegments(BaseHTTPRequestHandler):
    """Answers ``GET /segments/{id}.json`` with a small segment after a fixed latency."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real API would offer
    disable_nagle_algorithm = True  # else headers and body wait on the client's delayed ACK
    latency = 0.05

    def do_GET(self) -> None:
        match = _PATH.match(self.path)
        time.sleep(self.latency)  # the benchmark's whole point: a server that takes 50 ms
        if match is None:
            self._answer(404, {"Code": 404, "Message": "not found"})
            return
        sid = match.group(1)
        self._answer(200, {"SegmentID": sid, "Title": f"Segment {sid}", "RuleGroups": []})

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp the figures."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@contextmanager
def serving(latency: float) -> Iterator[str]:
    handler = type("Handler", (SlowSegments,), {"latency": latency})
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch_all(base_url: str, items: int, concurrency: int) -> float:
    """Seconds to fetch ``items`` segments through ``map_concurrent``; checks the answers."""
    context = ProviderContext(max_concurrency=concurrency)
    with HttpClient(base_url=base_url, context=context) as client:
        started = time.perf_counter()
        answers = client.map_concurrent(
            lambda sid: client.get_json(f"/segments/{sid}.json"), range(items)
        )
        elapsed = time.perf_counter() - started
    if [a["SegmentID"] for a in answers] != [str(n) for n in range(items)]:
        raise SystemExit("wrong answers: the segments came back out of order or garbled")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serial-items", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    parser.add_argument("--json", action="store_true", help="figures as JSON on stdout")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)

    with serving(args.latency) as base_url:
        fetch_all(base_url, args.concurrency, args.concurrency)  # warm up: imports, sockets
        concurrent = fetch_all(base_url, args.items, args.concurrency)
        serial = fetch_all(base_url, args.serial_items, 1) if args.serial_items else 0.0

    serial_estimate = serial / max(args.serial_items, 1) * args.items
    ideal = args.items * args.latency / args.concurrency
    passed = concurrent <= SECONDS_LIMIT
    figures = {
        "items": args.items,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "concurrent_s": round(concurrent, 3),
        "ideal_s": round(ideal, 3),
        "serial_items": args.serial_items,
        "serial_s": round(serial, 3),
        "serial_estimate_s": round(serial_estimate, 3),
        "speedup": round(serial_estimate / concurrent, 1) if serial and concurrent else None,
        "limit_s": SECONDS_LIMIT,
        "passed": passed,
    }
    lines = [
        f"{args.items} segments at max_concurrency {args.concurrency}, "
        f"{args.latency * 1000:.0f} ms each: {concurrent:.2f} s (ideal {ideal:.2f} s)"
    ]
    if serial:
        lines.append(
            f"{args.serial_items} segments one at a time: {serial:.2f} s -> about "
            f"{serial_estimate:.1f} s for {args.items} (speed-up x{figures['speedup']})"
        )
    lines.append(
        f"{'PASS' if passed else 'FAIL'}: {args.items} at {args.concurrency} "
        f"<= {SECONDS_LIMIT:.0f} s"
    )
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(figures, indent=2))
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
