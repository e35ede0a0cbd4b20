"""``manage.py run_worker``: django-tasks-db's ``db_worker`` plus a heartbeat ``/readyz`` can check.

django-tasks-db records which worker claimed a task but keeps no sign of life of an idle worker, so an
operator cannot tell "no tasks" from "no worker". This command runs the very same worker loop (every
``db_worker`` option works: ``--queue-name``, ``--interval``, ``--batch``, ``--worker-id``, …) and, in
a daemon thread, updates its :class:`~batches.models.WorkerHeartbeat` row every
``DASHBOARD_WORKER_HEARTBEAT_SECONDS`` (default 15). The first beat is written before the loop starts.
``/readyz`` fails when the freshest heartbeat is older than four intervals.

The heartbeat says the process is alive and reaches the database; a task that runs for a long time
does not stop it. With every beat (and once at start) the worker also puts back in the queue the tasks
whose own worker stopped beating (killed, out of memory, its machine gone): see
``batches/taskqueue.py``. By default it serves every queue (``--queue-name '*'``), taking the urgent
queue's work (webhook refreshes) first, by priority.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from batches.conf import conf
from batches.models import WorkerHeartbeat
from batches.taskqueue import requeue_orphans

logger = logging.getLogger("batches.worker")

# Rows of workers gone for longer than this are removed when a worker starts.
FORGET_AFTER = timedelta(days=1)


def sweep(worker_id: str) -> None:
    """Requeue the tasks of dead workers; a failure is logged, never fatal to the heartbeat."""
    try:
        outcome = requeue_orphans()
    except DatabaseError as err:
        logger.warning("orphaned tasks not checked: %s", type(err).__name__, extra={"worker_id": worker_id})
        return
    if any(outcome.values()):
        logger.warning("tasks of stopped workers: %(requeued)d run again, %(failed)d failed", outcome,
                       extra={"worker_id": worker_id})


def beat(worker_id: str, started) -> None:
    """Write one heartbeat (the row is created on the first)."""
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={"last_seen": timezone.now(), "started": started, "hostname": socket.gethostname()[:255],
                  "pid": os.getpid()},
    )


class Heartbeat(threading.Thread):
    def __init__(self, worker_id: str, interval: float, started) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.worker_id = worker_id
        self.interval = interval
        self.started = started
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                close_old_connections()
                try:
                    beat(self.worker_id, self.started)
                except DatabaseError as err:
                    logger.warning("worker heartbeat not written: %s", type(err).__name__,
                                   extra={"worker_id": self.worker_id})
                sweep(self.worker_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()


class Command(DbWorkerCommand):
    help = "Run the task worker (django-tasks-db's db_worker) with a heartbeat for /readyz."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(queue_name="*")  # every queue; the urgent one first, by priority
        parser.add_argument(
            "--heartbeat-seconds", type=float, default=None,
            help="How often the heartbeat is written (default: DASHBOARD_WORKER_HEARTBEAT_SECONDS).",
        )

    def handle(self, *args, heartbeat_seconds=None, **options) -> None:
        interval = heartbeat_seconds or conf().worker_heartbeat_seconds
        reloading_parent = (
            options.get("reload") and not options.get("batch") and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        )
        heartbeat = None
        if not reloading_parent:  # with --reload, the child that runs the loop beats, not the watcher
            started = timezone.now()
            worker_id = options["worker_id"]
            WorkerHeartbeat.objects.filter(last_seen__lt=started - FORGET_AFTER).delete()
            beat(worker_id, started)
            sweep(worker_id)
            heartbeat = Heartbeat(worker_id, interval, started)
            heartbeat.start()
            logger.info("worker %s: heartbeat every %gs", worker_id, interval, extra={"worker_id": worker_id})
        try:
            super().handle(*args, **options)
        finally:
            if heartbeat is not None:
                heartbeat.stop()
