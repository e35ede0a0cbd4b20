"""``manage.py sync_costs``: fetch the organization's billed costs into the database, check budgets
and drifts.

Without ``--once`` it runs until SIGTERM or SIGINT, waking every minute (or ``--interval``) to check
budgets and, when ``DASHBOARD_COSTS_SYNC_SECONDS`` have passed since the last successful fetch, to
fetch again. Several copies may run on several machines: the billing lease
(batches/costs/billing.py) lets one of them fetch per interval, and the alerts' unique keys tell each
crossing once. An upstream fault is one log line; the next wake retries.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from batches.conf import conf
from batches.costs.billing import billing_pass, new_owner

logger = logging.getLogger("batches.costs")

WAKE_SECONDS = 60.0


class Command(BaseCommand):
    help = "Fetch billed costs through the Admin API and check budgets (every DASHBOARD_COSTS_SYNC_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="One pass (fetching even when not due), then exit.")
        parser.add_argument("--interval", type=float, metavar="SECONDS", help=f"Seconds between wakes (default {WAKE_SECONDS:g}).")

    def handle(self, *args, once=False, interval=None, **options):
        owner = new_owner()
        if once:
            result = billing_pass(owner, force=True)
            self.stdout.write(f"sync_costs: {result.summary}")
            if result.error:
                raise CommandError(f"The billing pass failed: {result.error}")
            return
        stop = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
        # At least a second between wakes, whatever the settings say: never a busy loop.
        wake = max(float(interval if interval is not None else min(WAKE_SECONDS, conf().costs_sync_seconds)), 1.0)
        self.stdout.write(
            f"sync_costs: instance {owner}, billed costs every {conf().costs_sync_seconds:g}s, "
            f"budgets every {wake:g}s; stop with SIGTERM or Ctrl-C"
        )
        try:
            while not stop.is_set():
                try:
                    result = billing_pass(owner)
                except Exception:
                    logger.exception("the billing pass failed")
                else:
                    if result.ran:
                        logger.info("sync_costs: %s", result.summary)
                stop.wait(wake)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("sync_costs: stopped")
