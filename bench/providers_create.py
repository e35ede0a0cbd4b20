"""How an Anthropic create streams its inline requests: a JSONL file of N lines (default 100,000, about
200 MB) sent through ``AnthropicClient.create_batch_inline`` to a loopback server that reads and drops
the body. Prints the body size, the time, and the process's peak memory growth, against the target
that the file is never held in memory (growth well under the file's size).

    .venv/bin/python -m bench.providers_create [--lines 100000] [--line-bytes 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from batches.upstream import AnthropicClient

BATCH = {"id": "msgbatch_bench", "type": "message_batch", "processing_status": "in_progress",
         "request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
         "created_at": "2026-12-07T06:00:00Z", "expires_at": "2026-12-08T06:00:00Z"}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        left = int(self.headers["content-length"])
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            left -= len(chunk)
            Sink.received += len(chunk)
        body = json.dumps(BATCH).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--line-bytes", type=int, default=2000)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryFile() as handle:
        filler = "x" * max(args.line_bytes - 150, 1)
        for n in range(args.lines):
            line = {"custom_id": f"r-{n}", "params": {"model": "claude-haiku-4-5", "max_tokens": 16,
                                                      "messages": [{"role": "user", "content": filler}]}}
            handle.write(json.dumps(line).encode() + b"\n")
        size = handle.tell()
        client = AnthropicClient(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", timeout=60)
        before = peak_mib()
        started = time.monotonic()
        batch = client.create_batch_inline(handle)
        seconds = time.monotonic() - started
        growth = peak_mib() - before
    server.shutdown()
    print(f"file {size / 1e6:.1f} MB, {args.lines:,} lines; body received {Sink.received / 1e6:.1f} MB; batch {batch.id}")
    print(f"sent in {seconds:.2f} s ({size / 1e6 / seconds:.0f} MB/s); peak memory growth {growth:.1f} MiB "
          f"(target: far below the file's {size / 2**20:.0f} MiB): {'met' if growth < size / 2**20 / 4 else 'missed'}")


if __name__ == "__main__":
    main()
