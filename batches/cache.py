"""The one caching helper, with one idea of invalidation: a value is kept under a key that names the
*generation* of what it was made from. When the source changes, so does its generation: the next reader
asks under a new key and never sees the old entry again, which simply ages out (a time limit in the
shared cache, least-recently-used eviction in a process). Nothing is deleted to invalidate.

Where generations come from: a project's upstream reads have a token that each create and cancel
replaces (:func:`invalidate`); the index has :func:`batches.index.selectors.index_generation` (its
highest row id and latest write); a rendered row is keyed by the batch's own content; a parsed
configuration file by its path and modification time.

Two stores:

* **Shared** (Django's cache: local memory, or Redis with ``REDIS_URL``, seen by every process):
  :func:`shared_value` for a value any process may reuse, and :func:`shared_read` for upstream reads.
  Identical reads of one project within ``DASHBOARD_CACHE_SECONDS`` are served from the cache;
  concurrent misses are coalesced (an in-flight map within a process, a ``cache.add()`` lock across
  processes) so one upstream call answers them all, waiting no longer than one upstream read could
  take. Upstream errors are shared for at most a second. The design and its measurements:
  docs/reliability.md, "Load: shared reads with request coalescing".
* **In-process**: :class:`LocalCache`, a bounded LRU (``cachetools``) behind a lock, for what is
  cheap to keep per process and costly to make (rendered fragments, parsed files).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import cachetools
from django.core.cache import cache

from .conf import conf
from .metrics import READ_CACHE

logger = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

KEY_PREFIX = "batches:read"
GENERATION_KEY = f"{KEY_PREFIX}:generation"
ERROR_CACHE_SECONDS = 1.0
POLL_SECONDS = 0.02

_OK = "ok"
_ERR = "err"
_MISSING = object()


# ---------------------------------------------------------------------------------------------------
# In one process
# ---------------------------------------------------------------------------------------------------


class LocalCache(Generic[K, V]):
    """A bounded least-recently-used map, safe to share between threads. Keys carry the generation of
    what their value was made from, so an entry is never wrong, only unused until it is evicted."""

    def __init__(self, maxsize: int) -> None:
        self._entries: cachetools.LRUCache[K, V] = cachetools.LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept under ``key``, None when there is none."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept under ``key`` (None too), or ``make()`` kept under it (made outside the lock:
        two threads may both make it, and the later one is kept). What ``make`` raises is not kept."""
        with self._lock:
            value = self._entries.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------------------------------------
# Shared by every process
# ---------------------------------------------------------------------------------------------------


def shared_value(key: str, make: Callable[[], T], *, seconds: float) -> T:
    """The value kept under ``key`` in the shared cache, or ``make()`` kept there for ``seconds``
    (0 or less: not kept). ``key`` must name the generation of what the value is made from."""
    if seconds <= 0:
        return make()
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = make()
    cache.set(key, value, timeout=seconds)
    return value


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    outcome: tuple | None = None  # (kind, value[, expires at])
    #: Readers of this process waiting for the leader's answer.
    followers: int = 0


_flights: dict[str, _Flight] = {}
_flights_lock = threading.Lock()


def cache_seconds() -> float:
    """How long a successful read is shared. 0 (or less) turns sharing off entirely."""
    return conf().cache_seconds


def _generation(project: str) -> str:
    """The project's generation: replaced by each create and cancel, and made afresh (never "0" again)
    when the shared cache lost it (a flush, a restart), so no process's kept reads outlive that."""
    key = f"{GENERATION_KEY}:{project}"
    value = cache.get(key)
    if value is None:
        cache.add(key, uuid.uuid4().hex, timeout=None)  # the first process to get there sets it
        value = cache.get(key) or "0"
    return value


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
        key = make_key(project, parts)
        outcome = (_OK, value, time.time() + seconds)
        cache.set(key, outcome, timeout=seconds)
        RECENT_READS.put(key, outcome)


#: key -> (kind, value, expires at): the shared reads this process took out of (or put into) Django's
#: cache, kept unpickled until the shared entry expires. Keys name the project's generation, so a create
#: or cancel anywhere moves every reader to a new key at once; a 100-row list no longer unpickles its
#: hundred batches per view.
RECENT_READS: LocalCache[str, tuple] = LocalCache(maxsize=512)


def _recent(key: str) -> tuple | None:
    outcome = RECENT_READS.get(key)
    if outcome is not None and outcome[2] > time.time():
        return outcome
    return None


def _keep_recent(key: str, outcome: tuple) -> None:
    if len(outcome) == 3:  # with the time its shared entry expires (entries written before have none)
        RECENT_READS.put(key, outcome)


def _unwrap(outcome: tuple) -> Any:
    kind, value = outcome[0], outcome[1]
    if kind == _ERR:
        # A copy, so that threads raising the shared error do not fight over one __traceback__.
        raise copy.copy(value)
    return value


def _call(loader: Callable[[], T], errors: tuple[type[Exception], ...]) -> tuple[str, Any]:
    try:
        return (_OK, loader())
    except errors as err:
        err.__traceback__ = None
        return (_ERR, err)


@dataclass(frozen=True)
class _Read:
    project: str
    loader: Callable[[], Any]
    errors: tuple[type[Exception], ...]
    wait_seconds: float
    patience: float = 0.0
    impatient: Callable[[], None] | None = None


def _load_across_processes(read: _Read, key: str, seconds: float) -> tuple:
    """Load ``key`` holding the cross-process lock, or pick up what the lock's holder stored."""
    lock_key = f"{key}:lock"
    project, bound = read.project, read.wait_seconds
    started = time.monotonic()
    deadline = started + bound
    impatient = read.impatient
    owned = cache.add(lock_key, 1, timeout=bound)
    while not owned:
        time.sleep(POLL_SECONDS)
        hit = cache.get(key)
        if hit is not None:
            READ_CACHE.labels(project=project, outcome="coalesced").inc()
            return hit
        if impatient is not None and time.monotonic() - started >= read.patience:
            ask, impatient = impatient, None  # asked once
            ask()  # ends the wait by raising, or lets it go on
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
        kind, value = _call(read.loader, read.errors)
        ttl = seconds if kind == _OK else min(ERROR_CACHE_SECONDS, seconds)
        outcome = (kind, value, time.time() + ttl)
        cache.set(key, outcome, timeout=ttl)
        return outcome
    finally:
        if owned:
            cache.delete(lock_key)


def shared_read(
    project: str,
    parts: tuple[Hashable, ...],
    loader: Callable[[], T],
    *,
    errors: tuple[type[Exception], ...],
    wait_seconds: float,
    patience: float = 0.0,
    impatient: Callable[[], None] | None = None,
) -> T:
    """Return ``loader()``, shared with every identical read within the cache period.

    ``parts`` names the read (e.g. ``("batch", batch_id)``); ``loader`` performs it upstream. An
    exception of ``errors`` is shared too (briefly); anything else ``loader`` raises is a bug, never
    kept. No reader waits for another's read longer than ``wait_seconds`` (the longest one read can
    take). A reader that has waited ``patience`` seconds for another's read calls ``impatient()``, which
    may end the wait by raising one of ``errors`` (a page that can answer from elsewhere should not hold
    its thread while the upstream hangs). Raises whatever ``loader`` raises (one of ``errors`` may come
    from another viewer's read).
    """
    seconds = cache_seconds()
    if seconds <= 0:
        READ_CACHE.labels(project=project, outcome="miss").inc()
        return loader()
    key = make_key(project, parts)
    hit = _recent(key)
    if hit is None:
        hit = cache.get(key)
        if hit is not None:
            _keep_recent(key, hit)
    if hit is not None:
        READ_CACHE.labels(project=project, outcome="hit").inc()
        return _unwrap(hit)

    with _flights_lock:
        flight = _flights.get(key)
        leader = flight is None
        if leader:
            flight = _flights[key] = _Flight()
        else:
            flight.followers += 1
    read = _Read(project, loader, errors, wait_seconds, patience, impatient)
    if not leader:
        if impatient is not None and not flight.done.wait(patience):
            impatient()
        if flight.done.wait(wait_seconds) and flight.outcome is not None:
            READ_CACHE.labels(project=project, outcome="coalesced").inc()
            return _unwrap(flight.outcome)
        # The leader hit a bug or is stuck past any bound: read for ourselves.
        READ_CACHE.labels(project=project, outcome="miss").inc()
        return loader()

    try:
        flight.outcome = _load_across_processes(read, key, seconds)
        _keep_recent(key, flight.outcome)
    except errors as err:  # impatient() ended the wait: this process's followers share the answer
        err.__traceback__ = None
        flight.outcome = (_ERR, err)
        raise
    finally:
        flight.done.set()
        with _flights_lock:
            _flights.pop(key, None)
    return _unwrap(flight.outcome)
