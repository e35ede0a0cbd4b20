"""python -m emulator --host 127.0.0.1 --port 8100 --api-key sk-emulator --speed 1.0 [--no-seed]"""

import argparse
import signal
import sys
import threading

from .server import EmulatorServer


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emulator", description="OpenAI Batch + Files API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--api-key", default="sk-emulator", help="expected bearer token ('' = sk-emulator)")
    p.add_argument("--any-key", action="store_true", help="accept any bearer token")
    p.add_argument("--speed", type=float, default=1.0, help="clock speed multiplier")
    p.add_argument("--no-seed", action="store_true", help="start without the seeded batches")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args(argv)
    key = None if args.any_key else (args.api_key or "sk-emulator")
    srv = EmulatorServer(host=args.host, port=args.port, api_key=key, speed=args.speed,
                         seed=not args.no_seed, verbose=args.verbose)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.start()
    print("emulator listening on %s" % srv.base_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
