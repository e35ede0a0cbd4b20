"""Shared pieces of the notification tests: index rows, an immediate task backend, and real
receivers on loopback (an SMTP server and a Slack-style webhook)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from asgiref.local import Local
from django.utils import timezone

from batches.models import BatchRecord
from tests.helpers import LoopbackHTTP, QuietHandler

IMMEDIATE = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": ["default", "urgent"]}}
DATABASE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "urgent"]}}


@contextmanager
def task_backend(settings, tasks: dict) -> Iterator[None]:
    """Django's task backends pointed at ``tasks`` inside the block, and back at the test's own after it.
    Django 6.1 caches the TASKS setting in its backend handler and has no setting_changed hook for it,
    so the cache is dropped on the way in and again on the way out."""
    original = settings.TASKS
    _use_tasks(settings, tasks)
    try:
        yield
    finally:
        _use_tasks(settings, original)


def _use_tasks(settings, tasks: dict) -> None:
    from django.tasks import task_backends

    settings.TASKS = tasks
    task_backends._settings = None
    task_backends.__dict__.pop("settings", None)
    task_backends._connections = Local(task_backends.thread_critical)


def batch_record(project="default", batch_id="batch_n1", status="in_progress", total=10, completed=0, failed=0, **extra):
    now = int(time.time())
    values = {
        "status": status, "total_requests": total, "completed_requests": completed, "failed_requests": failed,
        "created_at": now - 3600, "expires_at": now + 20 * 3600, "last_synced": timezone.now(),
    }
    if status in ("completed", "failed", "expired", "cancelled"):
        values[f"{status}_at"] = now
    values.update(extra)
    record, _ = BatchRecord.objects.update_or_create(project=project, batch_id=batch_id, defaults=values)
    return record


class SMTPRecorder:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.arrived.set()
        return "250 Message accepted for delivery"


class WebhookReceiver(LoopbackHTTP):
    """A Slack-style incoming webhook on a free loopback port: records each POST and answers with the
    next status from ``statuses`` (the last one repeats)."""

    def __init__(self, statuses=(200,)) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"null")})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                payload = b"ok" if status < 400 else b"internal_error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        super().__init__(Handler)
        self.url = f"{self.origin}/services/T000/B000/XXXX"


class SlowReceiver:
    """A webhook receiver on loopback that accepts connections and then answers slowly or never:
    ``drip`` seconds between the bytes of its answer (None: it never says anything). Counts connections."""

    def __init__(self, drip: float | None = None) -> None:
        import socket

        self.drip = drip
        self.connections = 0
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/services/T000/B000/SLOW"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.held: list = []

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            self.held.append(conn)
            if self.drip is not None:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        try:
            for i in range(len(answer)):
                if self.stopped.wait(self.drip):
                    return
                conn.sendall(answer[i:i + 1])
        except OSError:
            pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.listener.close()
