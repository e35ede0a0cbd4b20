"""The notification retry sweep: send every pending notification that is due, and raise "at risk"
notifications from the index. Run it every minute from cron, or keep it running with ``--loop``.

Safe with several copies running: each row is claimed with a conditional UPDATE before it is sent.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from batches.models import NotificationRule
from batches.notify.rules import notify_at_risk
from batches.index.flags import flagged_ids
from batches.notify.tasks import send_due


class Command(BaseCommand):
    help = "Send due and retried notifications (and evaluate 'batch at risk' rules)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", type=float, default=0, metavar="SECONDS",
                            help="Keep running, sweeping every SECONDS (stops cleanly on SIGTERM/SIGINT).")

    def handle(self, *args, loop: float = 0, **options):
        stop = threading.Event()
        if loop:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        while True:
            self.sweep()
            if not loop or stop.wait(loop):
                return

    def sweep(self) -> None:
        projects = set(NotificationRule.objects.filter(kind=NotificationRule.Kind.AT_RISK).values_list("project", flat=True))
        for project in sorted(projects):
            notify_at_risk(project, flagged_ids(project, "at-risk"))
        outcomes = send_due()
        if any(outcomes.values()):
            self.stdout.write(", ".join(f"{name}: {count}" for name, count in sorted(outcomes.items())))
