"""A slow Campaign Monitor for the HTTP benchmarks: the tests' stateful fake behind a real
HTTP server on 127.0.0.1, answering each request after a fixed latency.

Run in a child process (``serve`` starts it and reads its port), so the server's CPU time is
not the client's: the benchmarks measure the client with ``time.process_time``. The fake
(``tests/providers/fakes/campaignmonitor.py``) answers as the platform's documentation
says; here it only loses its per-write history (a copy of every segment after each write,
which would make 1,000 writes quadratic on the server side) and runs under one lock, since
it is not meant for threads. The latency is waited outside the lock, as requests to a real
server overlap.

Two extra routes, outside the API's path: ``GET /_bench/stats`` answers the requests
counted per method and the server's CPU seconds; ``POST /_bench/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from tests.providers.fakes.campaignmonitor import FakeCampaignMonitor  # noqa: E402

API_PATH = "/api/v3.3"
LIST = "News"


class QuietFake(FakeCampaignMonitor):
    """The fake without its write history and request log (they only grow)."""

    def _snapshot(self) -> None:
        """No history: nothing here asserts on it."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        self.requests.clear()
        return response


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API offers
    disable_nagle_algorithm = True  # else the answer waits on the client's delayed ACK
    fake: QuietFake
    lock: threading.Lock
    latency: float
    counts: Counter[str]

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_bench/"):
            self._bench(self.path.removeprefix("/_bench/"))
            return
        time.sleep(self.latency)  # the point of the benchmark: every answer takes this long
        request = httpx.Request(
            self.command, "http://bench" + self.path, headers=dict(self.headers), content=body
        )
        with self.lock:
            self.counts[self.command] += 1
            response = self.fake.handle(request)
            response.read()
        self._answer(response.status_code, response.content, response.headers)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def _bench(self, what: str) -> None:
        with self.lock:
            if what == "reset":
                self.counts.clear()
            stats = {"requests": dict(self.counts), "cpu_s": time.process_time()}
        self._answer(200, json.dumps(stats).encode(), {"Content-Type": "application/json"})

    def _answer(self, status: int, content: bytes, headers: Any) -> None:
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp the figures."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def seeded(lists: int, segments: int) -> QuietFake:
    """A fake client with ``lists`` lists (``News``, ``News 2``...) of ``segments`` segments
    each, every one with its own rule."""
    fake = QuietFake(base_url="http://bench" + API_PATH)
    for n in range(lists):
        list_id = fake.add_list(LIST if n == 0 else f"{LIST} {n + 1}")
        for i in range(segments):
            fake.add_segment(list_id, f"Segment {i}", [[("EmailAddress", f"CONTAINS @x{i}.com")]])
    return fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A slow fake Campaign Monitor on 127.0.0.1.")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--lists", type=int, default=1)
    parser.add_argument("--segments", type=int, default=0)
    args = parser.parse_args(argv)
    attributes = {
        "fake": seeded(args.lists, args.segments),
        "lock": threading.Lock(),
        "latency": args.latency,
        "counts": Counter(),
    }
    server = Server(("127.0.0.1", 0), type("BenchHandler", (Handler,), attributes))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or exits)
    server.shutdown()
    server.server_close()
    return 0


@dataclass(frozen=True)
class Running:
    """A slow server in a child process."""

    base_url: str
    """The API's base URL (``http://127.0.0.1:PORT/api/v3.3``)."""
    root: str

    @property
    def api_key(self) -> str:
        return FakeCampaignMonitor.api_key  # type: ignore[return-value]

    @property
    def client_id(self) -> str:
        return FakeCampaignMonitor.client_id

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        """Requests counted per method since the last reset, and the server's CPU seconds."""
        with httpx.Client(base_url=self.root) as client:
            if reset:
                client.post("/_bench/reset")
            found: dict[str, Any] = client.get("/_bench/stats").json()
        return found


@contextmanager
def serve(latency: float, lists: int = 1, segments: int = 0) -> Iterator[Running]:
    """Start the server in a child process; stop it on leaving."""
    command = [sys.executable, str(Path(__file__).resolve())]
    command += ["--latency", str(latency), "--lists", str(lists), "--segments", str(segments)]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        root = f"http://127.0.0.1:{port}"
        yield Running(base_url=root + API_PATH, root=root)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main())
