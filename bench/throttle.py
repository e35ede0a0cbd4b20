"""A TCP forwarder that limits each connection's rate in both directions, to stand in for a remote upstream.

``python -m bench.throttle --port P --target-port T --mb-s 100``

On loopback the emulator serves a file from the page cache at about 1 GB/s, so any extra hop halves
throughput on a 2-core machine. Putting both the direct client and the dashboard behind the same
throttle shows what happens when the upstream is an API across a network, as in production.
"""

from __future__ import annotations

import argparse
import signal
import socket
import threading
import time

CHUNK = 64 * 1024


def pump(src: socket.socket, dst: socket.socket, bytes_per_second: float | None) -> None:
    # Pacing clock: when the next byte may leave. An idle keep-alive connection earns no credit, so a
    # download that follows a pause is paced from its own first byte.
    next_send = time.monotonic()
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
            if bytes_per_second:
                now = time.monotonic()
                next_send = max(next_send, now) + len(data) / bytes_per_second
                if next_send > now:
                    time.sleep(next_send - now)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(port: int, target_port: int, mb_s: float) -> None:
    listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
    rate = mb_s * 1_000_000 if mb_s > 0 else None

    def handle(client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port))
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, upstream, rate), daemon=True).start()
        pump(upstream, client, rate)
        client.close()
        upstream.close()

    while True:
        client, _ = listener.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


def _exit(*_args) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throttle", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--mb-s", type=float, default=100.0, help="per-connection rate in each direction, MB/s")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit)
    serve(args.port, args.target_port, args.mb_s)


if __name__ == "__main__":
    main()
