"""Constants and small helpers the tests share (fixtures live in conftest.py; import these from here,
never from it)."""

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from django.db import connection

EMULATOR_KEY = "sk-emulator-test"
# A second project of the same emulator: its own key, its own seeded batches (NOTES.md §6.5).
RESEARCH_KEY = "sk-emulator-research"
# The header htmx sends with every request it makes: ``client.get(url, headers=HTMX)``.
HTMX = {"HX-Request": "true"}
# The organization's admin key of the same emulator: the Admin API's billed costs and usage.
EMULATOR_ADMIN_KEY = "sk-admin-emulator-test"

T = TypeVar("T")


def api_usage(input_tokens: int, cached: int, output_tokens: int, reasoning: int = 0) -> dict:
    """A batch's ``usage`` as the Batch API writes it (``cached`` and ``reasoning`` in their details)."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def at_once(work: Callable[[str], T], names: Sequence[str], *, timeout: float = 20.0) -> dict[str, T]:
    """Run ``work(name)`` for every name at the same moment, each in its own thread with its own
    database connection (as separate worker processes would have), and return each name's result.
    The first exception a thread raised is raised here, once all have ended."""
    start = threading.Barrier(len(names))
    results: dict[str, T] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            start.wait(timeout=5)
            results[name] = work(name)
        except BaseException as err:  # surfaced below
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    return results


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean (no line per request on stderr)."""

    def log_message(self, *args) -> None:
        pass


class LoopbackHTTP:
    """An HTTP server with ``handler`` on a free loopback port, served from a daemon thread: a context
    manager, or ``start()`` / ``stop()``. The fakes and receivers of the tests build on it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
