"""Short-lived shared reads with request coalescing, so the upstream load does not grow with viewers.

Identical reads of one project within ``DASHBOARD_CACHE_SECONDS`` are served from Django's cache (local
memory, or Redis with ``REDIS_URL``); concurrent misses are coalesced (an in-flight map within a
process, a ``cache.add()`` lock across processes) so one upstream call answers them all, waiting no
longer than one upstream read could take. Upstream errors are shared for at most a second. After a
create or cancel, :func:`invalidate` moves the project's keys to a new generation. The design and its
measurements: docs/reliability.md, "Load: shared reads with request coalescing".
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.cache import cache

from .conf import conf
from .metrics import READ_CACHE
from .upstream import RETRY_BUDGET_SECONDS, UpstreamError

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_PREFIX = "batches:read"
GENERATION_KEY = f"{KEY_PREFIX}:generation"
ERROR_CACHE_SECONDS = 1.0
POLL_SECONDS = 0.02

_OK = "ok"
_ERR = "err"


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple[str, Any] | None = None


_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()


def cache_seconds() -> float:
    """How long a successful read is shared. 0 (or less) turns sharing off entirely."""
    return conf().cache_seconds


def wait_bound() -> float:
    """The longest one upstream read can take; no coalesced wait lasts longer than this."""
    return conf().openai_timeout + conf().openai_connect_timeout + RETRY_BUDGET_SECONDS + 1.0


def _generation(project: str) -> str:
    return cache.get(f"{GENERATION_KEY}:{project}") or "0"


def make_key(project: str, parts: tuple[Hashable, ...]) -> str:
    """The cache key for one read of one project under its current generation. Parts must be
    validated ids and ints, so keys stay short and free of control characters; the project slug is
    part of every key, so one project's answer is never served under another's URL."""
    return ":".join([KEY_PREFIX, project, _generation(project), *(str(p) for p in parts)])


def invalidate(project: str) -> None:
    """Forget every cached read of ``project`` (all processes): called after each create and cancel."""
    cache.set(f"{GENERATION_KEY}:{project}", uuid.uuid4().hex, timeout=None)


def remember(project: str, parts: tuple[Hashable, ...], value: Any) -> None:
    """Store a value the dashboard just got from an action (e.g. the batch a cancel returned)."""
    seconds = cache_seconds()
    if seconds > 0:
        cache.set(make_key(project, parts), (_OK, value), timeout=seconds)


def _unwrap(outcome: tuple[str, Any]) -> Any:
    kind, value = outcome
    if kind == _ERR:
        # A copy, so that threads raising the shared error do not fight over one __traceback__.
        raise copy.copy(value)
    return value


def _call(loader: Callable[[], T]) -> tuple[str, Any]:
    try:
        return (_OK, loader())
    except UpstreamError as err:
        err.__traceback__ = None
        return (_ERR, err)


def _load_across_processes(key: str, loader: Callable[[], T], seconds: float, project: str = "") -> tuple[str, Any]:
    """Load ``key`` holding the cross-process lock, or pick up what the lock's holder stored."""
    lock_key = f"{key}:lock"
    bound = wait_bound()
    deadline = time.monotonic() + bound
    owned = cache.add(lock_key, 1, timeout=bound)
    while not owned:
        time.sleep(POLL_SECONDS)
        hit = cache.get(key)
        if hit is not None:
            READ_CACHE.labels(project=project, outcome="coalesced").inc()
            return hit
        if time.monotonic() >= deadline:
            logger.warning("shared read %s: waited %.1fs for another process; reading upstream", key, bound)
            break
        # The holder may have finished without storing (a bug in its loader): take over.
        owned = cache.add(lock_key, 1, timeout=bound)
    try:
        if owned:
            hit = cache.get(key)  # stored by the previous holder just before we took the lock
            if hit is not None:
                READ_CACHE.labels(project=project, outcome="hit").inc()
                return hit
        READ_CACHE.labels(project=project, outcome="miss").inc()
        outcome = _call(loader)
        ttl = seconds if outcome[0] == _OK else min(ERROR_CACHE_SECONDS, seconds)
        cache.set(key, outcome, timeout=ttl)
        return outcome
    finally:
        if owned:
            cache.delete(lock_key)


def shared_read(project: str, parts: tuple[Hashable, ...], loader: Callable[[], T]) -> T:
    """Return ``loader()``, shared with every identical read within the cache period.

    ``parts`` names the read (e.g. ``("batch", batch_id)``); ``loader`` performs it upstream.
    Raises whatever ``loader`` raises (an :class:`UpstreamError` may come from another viewer's read).
    """
    seconds = cache_seconds()
    if seconds <= 0:
        READ_CACHE.labels(project=project, outcome="miss").inc()
        return loader()
    key = make_key(project, parts)
    hit = cache.get(key)
    if hit is not None:
        READ_CACHE.labels(project=project, outcome="hit").inc()
        return _unwrap(hit)

    with _flights_lock:
        flight = _flights.get(key)
        leader = flight is None
        if leader:
            flight = _flights[key] = _Flight()
    if not leader:
        if flight.done.wait(wait_bound()) and flight.outcome is not None:
            READ_CACHE.labels(project=project, outcome="coalesced").inc()
            return _unwrap(flight.outcome)
        # The leader hit a bug or is stuck past any bound: read for ourselves.
        READ_CACHE.labels(project=project, outcome="miss").inc()
        return loader()

    try:
        flight.outcome = _load_across_processes(key, loader, seconds, project)
    finally:
        flight.done.set()
        with _flights_lock:
            _flights.pop(key, None)
    return _unwrap(flight.outcome)
