"""Injected faults: whole-response faults on a route (status, delay, drop, truncate, hang) and batch
faults (expiry, a forced ``token_limit_exceeded``, per-request 4xx/5xx lines in the error file).

Every request checks the response faults before auth (they are counted like real requests); the
control endpoints are never faulted. A ``hang`` fault accepts the request and never answers until
``clear_faults()`` (``DELETE /_emulator/faults``) or ``release_hung()`` lets go: the hung handler
then closes the connection without a response.
"""

import itertools
import re
import threading

from ..responses import stable_hash

HANG_MAX_SECS = 3600.0  # a hung request gives up on its own after an hour

_rule_ids = itertools.count(1)


class Fault:
    def __init__(self, route, method, status, body, headers, delay, drop, truncate, times, content_type, hang):
        if route and " " in route and method is None:
            method, route = route.split(" ", 1)
        self.route = route
        self.method = method.upper() if method else None
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = float(delay or 0.0)
        self.drop = bool(drop)
        self.truncate = bool(truncate)
        self.hang = bool(hang)
        self.times = times
        self.content_type = content_type

    def matches(self, method, route):
        if self.route is not None and self.route != route:
            return False
        if self.method is not None and self.method != method:
            return False
        return True


BATCH_FAULT_FIELDS = ("project", "model", "times", "expire_after", "token_limit_exceeded", "fail_5xx", "fail_4xx",
                      "fail_5xx_match", "fail_4xx_match", "status_5xx", "status_4xx", "once")


class BatchFault:
    """A rule applied to the next ``times`` batches (None = every batch) whose project/model match.

    ``expire_after``: the batch expires once this share (0 <= x < 1) of its requests is done.
    ``token_limit_exceeded``: the batch fails at validation as if the queue were full.
    ``fail_5xx`` / ``fail_4xx``: the share of requests answered with a 5xx / 4xx line, chosen by a
    hash of the custom_id; ``fail_5xx_match`` / ``fail_4xx_match``: a regular expression on the
    custom_id. ``once``: a custom_id fails this way only the first time it is seen (a retry succeeds).
    """

    def __init__(self, project=None, model=None, times=1, expire_after=None, token_limit_exceeded=False,
                 fail_5xx=0.0, fail_4xx=0.0, fail_5xx_match=None, fail_4xx_match=None, status_5xx=500,
                 status_4xx=400, once=False):
        if expire_after is not None and not 0 <= float(expire_after) < 1:
            raise ValueError("expire_after must be a share of the requests, 0 <= x < 1")
        for share in (fail_5xx, fail_4xx):
            if not 0 <= float(share) <= 1:
                raise ValueError("fail_5xx and fail_4xx are shares of the requests, between 0 and 1")
        if not 500 <= int(status_5xx) <= 599 or not 400 <= int(status_4xx) <= 499:
            raise ValueError("status_5xx must be 5xx and status_4xx 4xx")
        if times is not None and int(times) < 1:
            raise ValueError("times must be at least 1 (or null for every batch)")
        self.id = next(_rule_ids)
        self.project = project
        self.model = model
        self.times = None if times is None else int(times)
        self.expire_after = None if expire_after is None else float(expire_after)
        self.token_limit_exceeded = bool(token_limit_exceeded)
        self.fail_5xx = float(fail_5xx)
        self.fail_4xx = float(fail_4xx)
        try:
            self.match_5xx = re.compile(fail_5xx_match) if fail_5xx_match else None
            self.match_4xx = re.compile(fail_4xx_match) if fail_4xx_match else None
        except re.error as e:
            raise ValueError("a custom_id pattern is not a regular expression (%s)" % e) from None
        self.status_5xx = int(status_5xx)
        self.status_4xx = int(status_4xx)
        self.once = bool(once)
        self.seen = set()  # custom_ids already failed by a ``once`` rule

    def matches(self, project, model):
        return (self.project is None or self.project == project) and (self.model is None or self.model == model)

    @property
    def per_request(self):
        return bool(self.fail_5xx or self.fail_4xx or self.match_5xx or self.match_4xx)

    def status_for(self, custom_id):
        """The HTTP status this rule gives the request, or None."""
        if self.once and custom_id in self.seen:
            return None
        status = None
        if self.match_4xx is not None and self.match_4xx.search(custom_id):
            status = self.status_4xx
        elif self.match_5xx is not None and self.match_5xx.search(custom_id):
            status = self.status_5xx
        else:
            x = stable_hash("fault-%d:%s" % (self.id, custom_id)) % 10_000
            if x < self.fail_4xx * 10_000:
                status = self.status_4xx
            elif x < (self.fail_4xx + self.fail_5xx) * 10_000:
                status = self.status_5xx
        if status is not None and self.once:
            self.seen.add(custom_id)
        return status

    def describe(self):
        return {"id": self.id, "project": self.project, "model": self.model, "times": self.times,
                "expire_after": self.expire_after, "token_limit_exceeded": self.token_limit_exceeded,
                "fail_5xx": self.fail_5xx, "fail_4xx": self.fail_4xx,
                "fail_5xx_match": self.match_5xx.pattern if self.match_5xx else None,
                "fail_4xx_match": self.match_4xx.pattern if self.match_4xx else None,
                "status_5xx": self.status_5xx, "status_4xx": self.status_4xx, "once": self.once}


class FaultsMixin:
    """Fault registry of ``EmulatorState`` (everything under ``self.lock``)."""

    def _init_faults(self):
        self._faults = []
        self._batch_faults = []
        self._hang_release = threading.Event()
        self.hung = 0  # requests held by a hang fault right now

    def inject_fault(self, route=None, method=None, status=None, body=None, headers=None, delay=0.0,
                     drop=False, truncate=False, times=1, content_type=None, hang=False):
        f = Fault(route, method, status, body, headers, delay, drop, truncate, times, content_type, hang)
        with self.lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        """Remove every fault (response and batch faults) and release hung requests."""
        with self.lock:
            self._faults.clear()
            self._batch_faults.clear()
        self.release_hung()

    def release_hung(self):
        """Let every request held by a hang fault go (each closes its connection unanswered)."""
        with self.lock:
            event, self._hang_release = self._hang_release, threading.Event()
        event.set()

    def hang_event(self):
        with self.lock:
            return self._hang_release

    def take_fault(self, method, route):
        """Return (and consume one use of) the first fault matching this request, or None."""
        with self.lock:
            for f in self._faults:
                if f.matches(method, route):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    def add_batch_fault(self, **rule):
        unknown = [k for k in rule if k not in BATCH_FAULT_FIELDS]
        if unknown:
            raise ValueError("unknown batch fault field %r" % unknown[0])
        if rule.get("project") is not None:
            self.project(rule["project"])
        fault = BatchFault(**rule)
        with self.lock:
            self._batch_faults.append(fault)
        return fault.describe()

    def batch_faults(self):
        with self.lock:
            return [f.describe() for f in self._batch_faults]

    def _claim_batch_faults(self, project, model):
        """The rules that apply to a batch being validated now (each use is consumed)."""
        claimed = []
        for f in list(self._batch_faults):
            if f.matches(project, model):
                claimed.append(f)
                if f.times is not None:
                    f.times -= 1
                    if f.times <= 0:
                        self._batch_faults.remove(f)
        return claimed

    def _wants_custom_ids(self, project):
        return any(f.per_request and (f.project is None or f.project == project) for f in self._batch_faults)
