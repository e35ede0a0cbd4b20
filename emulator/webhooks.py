"""Signed webhook deliveries, the way OpenAI sends batch events (NOTES.md section 6.4).

Standard Webhooks: headers ``webhook-id`` (``wh_...``, the same on every retry, for deduplication),
``webhook-timestamp`` (real wall-clock seconds at each attempt, because receivers reject anything more
than 300 s away from their own clock) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of the secret after ``whsec_``.

One background thread delivers from a due-time heap, so a retry waiting for its backoff never blocks
other deliveries, and nothing here ever takes the emulator's state lock.
"""

import base64
import binascii
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import threading
import time
import urllib.parse

from . import ids

USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
DEFAULT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


def decode_secret(secret):
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError for anything else."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ValueError("A webhook secret must look like 'whsec_<base64>'.")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("The part of a webhook secret after 'whsec_' must be base64.") from None
    if not key:
        raise ValueError("A webhook secret must not be empty after 'whsec_'.")
    return key


def sign(secret, webhook_id, timestamp, body):
    """The ``webhook-signature`` header value for ``body`` (bytes)."""
    signed = b"%s.%d." % (webhook_id.encode(), int(timestamp)) + body
    mac = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class WebhookSender:
    """Queue of signed POSTs with retries (exponential backoff, short and configurable delays).

    ``deliveries`` holds one record per event: event id, webhook id, type, batch id, project, url,
    attempts, last HTTP status (None after a connection error), last error, and state
    (``pending``, ``delivered`` or ``failed`` once every retry is used up).
    """

    def __init__(self, retry_delays=DEFAULT_RETRY_DELAYS, timeout=5.0):
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = float(timeout)
        self._cv = threading.Condition()
        self._heap = []  # (due monotonic time, seq, job)
        self._seq = itertools.count()
        self._busy = 0
        self._generation = 0  # bumped by clear(); results of older attempts are dropped
        self._stopping = False
        self._thread = None
        self.deliveries = []

    def start(self):
        with self._cv:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
                self._thread.start()
        return self

    def close(self):
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            th, self._thread = self._thread, None
        if th is not None:
            th.join(timeout=self.timeout + 1)

    def submit(self, url, secret, event, project):
        """Queue one event; returns its delivery record (a live dict, read it under no lock)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        record = {
            "event_id": event["id"],
            "webhook_id": ids.hex_id("wh_"),
            "type": event["type"],
            "batch_id": event["data"]["id"],
            "project": project,
            "url": url,
            "attempts": 0,
            "last_status": None,
            "last_error": None,
            "state": "pending",
        }
        with self._cv:
            self.deliveries.append(record)
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), (record, secret, body)))
            self._cv.notify_all()
        return record

    def records(self):
        with self._cv:
            return [dict(r) for r in self.deliveries]

    def clear(self):
        """Forget queued events and records (in-flight attempts finish but are not recorded)."""
        with self._cv:
            self._heap.clear()
            self.deliveries = []
            self._generation += 1
            self._cv.notify_all()

    def wait_idle(self, timeout=10.0):
        """Block until nothing is queued, waiting for a retry or in flight. Returns True if idle."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._heap and not self._busy, timeout)

    # ------------------------------------------------------------- worker
    def _run(self):
        while True:
            with self._cv:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cv.wait(wait)
                    else:
                        self._cv.wait()
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._heap)
                self._busy += 1
                generation = self._generation
            record, secret, body = job
            status, error = self._post(record["url"], record["webhook_id"], secret, body)
            with self._cv:
                self._busy -= 1
                if generation == self._generation:
                    record["attempts"] += 1
                    record["last_status"] = status
                    record["last_error"] = error
                    if status is not None and 200 <= status < 300:
                        record["state"] = "delivered"
                    elif record["attempts"] <= len(self.retry_delays):
                        due = time.monotonic() + self.retry_delays[record["attempts"] - 1]
                        heapq.heappush(self._heap, (due, next(self._seq), job))
                    else:
                        record["state"] = "failed"
                self._cv.notify_all()

    def _post(self, url, webhook_id, secret, body):
        """One attempt. Returns (status or None, error text or None). Redirects are not followed."""
        parts = urllib.parse.urlsplit(url)
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, webhook_id, timestamp, body),
        }
        conn = conn_cls(parts.hostname, parts.port, timeout=self.timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, None if 200 <= resp.status < 300 else "HTTP %d" % resp.status
        except (OSError, http.client.HTTPException) as e:
            return None, "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
