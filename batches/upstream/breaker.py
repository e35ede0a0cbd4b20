"""A circuit breaker and a bulkhead per project, so a hung upstream cannot stall the dashboard.

With the API frozen, every page that asks it waits out a timeout while holding a web thread; sixteen
such pages hold every thread, and even ``/healthz`` queues behind them (issue #23 item 3). Three
defences, all per project and all in this module:

* **Bulkhead** (:func:`page_read`): at most ``DASHBOARD_UPSTREAM_PAGE_SLOTS`` page views of one project
  in one process wait on its upstream at once (only the viewer that asks it: viewers answered from the
  shared cache, or waiting for that one read, hold no place; see ``selectors.py``). One more
  is answered from the index at once where the index can stand in (the list, a batch's page); else it
  waits for a place while the holders have waited less than ``DASHBOARD_UPSTREAM_SLOW_SECONDS``, and
  after that gets the "not answering" page at once. So the other threads stay free for index pages,
  ``/healthz`` and other projects.
* **Short deadline for page reads** (:func:`page_read`, :func:`clamp`): inside a page view an upstream
  read has ``DASHBOARD_PAGE_READ_SECONDS`` in all (connect, send, answer); the sync and the task worker
  keep the client's longer timeouts.
* **Breaker** (:func:`send`): after ``DASHBOARD_BREAKER_TIMEOUTS`` requests in a row end in a timeout
  (a request's own retries count once) the project's
  breaker opens for ``DASHBOARD_BREAKER_OPEN_SECONDS``: every call answers at once with
  :class:`UpstreamNotAnswering` (503, ``Retry-After``), and the views show what the index holds instead
  where it can stand in. Then one call goes through as a probe: an answer (any HTTP status) closes the
  breaker, another timeout opens it again.

State lives in this process (a lock guards it; every thread shares it). Each web process, the sync and
the worker learn on their own that the upstream hangs, after a few timeouts each: nothing is shared
across processes, so a lost cache server cannot wedge every breaker open, and a breaker never opens for a
process that saw no timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from ..conf import conf
from ..metrics import UPSTREAM_BREAKER
from .errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable

logger = logging.getLogger("batches.client")
T = TypeVar("T")


class UpstreamNotAnswering(UpstreamUnavailable):
    default_message = "The Batch API is not answering: its last requests timed out."
    default_hint = (
        "The dashboard stops asking it for a short while so that every other page stays fast; batches "
        "the dashboard's index holds are shown from the index meanwhile. Try again in a minute."
    )


class Breaker:
    """The breaker and bulkhead of one project in this process."""

    def __init__(self, key: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.key = key
        self.clock = clock
        self.lock = threading.Condition()
        self.timeouts = 0
        self.open_until = 0.0
        self.probing = False
        #: The page views holding a place, and since when.
        self.holders: dict[object, float] = {}

    # -- the breaker ---------------------------------------------------------------------------------

    def _open_error(self) -> UpstreamNotAnswering | None:
        """The refusal while open and cooling down, or while the probe is out (caller holds the lock)."""
        if not self.open_until:
            return None
        left = self.open_until - self.clock()
        if left <= 0 and not self.probing:
            return None
        return UpstreamNotAnswering(
            f"The Batch API is not answering: {conf().breaker_timeouts} requests in a "
            f"row timed out, so the dashboard is not asking it again for {max(left, 1):.0f} s.",
            retry_after=max(left, 1.0),
        )

    def admit(self) -> bool:
        """Raise :class:`UpstreamNotAnswering` while open; returns whether this call is the probe."""
        with self.lock:
            error = self._open_error()
            if error is not None:
                UPSTREAM_BREAKER.labels(project=self.key, event="refused").inc()
                raise error
            if self.open_until:
                self.probing = True
                return True
            return False

    def record(self, timed_out: bool, probe: bool) -> None:
        with self.lock:
            if probe:
                self.probing = False
            if not timed_out:
                if self.open_until:
                    logger.warning("upstream %s answers again: breaker closed", self.key)
                    UPSTREAM_BREAKER.labels(project=self.key, event="closed").inc()
                self.timeouts, self.open_until = 0, 0.0
                return
            self.timeouts += 1
            if probe or self.timeouts >= conf().breaker_timeouts:
                seconds = conf().breaker_open_seconds
                self.open_until = self.clock() + seconds
                self.timeouts = 0
                logger.warning("upstream %s is not answering: breaker open for %gs", self.key, seconds)
                UPSTREAM_BREAKER.labels(project=self.key, event="opened").inc()

    def end_probe(self) -> None:
        with self.lock:
            self.probing = False

    @property
    def is_open(self) -> bool:
        with self.lock:
            return bool(self.open_until)

    # -- the bulkhead --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def slot(self, stand_in: Callable[[], bool] | None = None) -> Iterator[None]:
        """A place among the page views waiting on this upstream. While every place is taken: when the
        index can stand in (``stand_in()``), refuse at once, so the view answers from the index without
        holding a thread; else wait for a place as long as the oldest holder has waited less than
        ``DASHBOARD_UPSTREAM_SLOW_SECONDS`` (a slow but living API frees places in time), and past that
        refuse at once: the upstream looks hung."""
        slots = max(conf().upstream_page_slots, 1)
        slow = conf().upstream_slow_seconds
        token = object()
        with self.lock:
            error = self._open_error()
            if error is not None:
                UPSTREAM_BREAKER.labels(project=self.key, event="refused").inc()
                raise error
            busy = len(self.holders)
        if busy >= slots and stand_in is not None and stand_in():  # a query: not under the lock
            raise UpstreamNotAnswering(
                f"The Batch API is busy: {busy} page views of this project are already waiting for it on this server.",
                retry_after=5.0,
            )
        with self.lock:
            while len(self.holders) >= slots:
                waited = self.clock() - min(self.holders.values())
                if waited >= slow:
                    raise UpstreamNotAnswering(
                        f"The Batch API is slow to answer: {len(self.holders)} page views of this project have "
                        f"been waiting for it for {waited:.0f} s or more on this server.",
                        retry_after=5.0,
                    )
                self.lock.wait(slow - waited)
            self.holders[token] = self.clock()
        try:
            yield
        finally:
            with self.lock:
                del self.holders[token]
                self.lock.notify()


_lock = threading.Lock()
_breakers: dict[str, Breaker] = {}
_page = threading.local()


def breaker_for(key: str) -> Breaker:
    breaker = _breakers.get(key)
    if breaker is None:
        with _lock:
            breaker = _breakers.setdefault(key, Breaker(key))
    return breaker


def reset() -> None:
    """Forget every breaker (tests; a process that reconfigured its projects)."""
    with _lock:
        _breakers.clear()


@contextlib.contextmanager
def page_read(key: str, stand_in: Callable[[], bool] | None = None) -> Iterator[None]:
    """Around a page view's upstream read (selectors): a slot of the project's bulkhead, and the short
    page deadline for every request made inside."""
    with breaker_for(key).slot(stand_in):
        previous = getattr(_page, "deadline", None)
        _page.deadline = time.monotonic() + conf().page_read_seconds
        try:
            yield
        finally:
            _page.deadline = previous


def clamp(kwargs: dict[str, Any], default: httpx.Timeout) -> dict[str, Any]:
    """The request's keyword arguments with its timeouts cut to what is left of the page deadline (only
    inside :func:`page_read`, and only when the call did not choose its own timeout)."""
    deadline = getattr(_page, "deadline", None)
    if deadline is None or "timeout" in kwargs:
        return kwargs
    left = max(deadline - time.monotonic(), 0.01)
    timeout = httpx.Timeout(
        connect=min(default.connect or left, left), read=min(default.read or left, left),
        write=min(default.write or left, left), pool=min(default.pool or left, left),
    )
    return {**kwargs, "timeout": timeout}


def send(key: str, call: Callable[[], T]) -> T:
    """Make one logical upstream request (its retries included) through the project's breaker: refused
    at once while it is open; a request that ends in a timeout counts towards opening it, one the API
    answered (with any HTTP status) closes it, one that could not connect does neither."""
    breaker = breaker_for(key)
    probe = breaker.admit()
    try:
        response = call()
    except UpstreamTimeout:
        breaker.record(True, probe)
        raise
    except UpstreamError as err:
        if err.status_code is not None:  # an HTTP answer, even an error, is a sign of life
            breaker.record(False, probe)
        elif probe:  # refused or reset: not a hang, but the probe is over; the next call probes again
            breaker.end_probe()
        raise
    except BaseException:
        if probe:
            breaker.end_probe()
        raise
    breaker.record(False, probe)
    return response
