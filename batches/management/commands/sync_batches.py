"""``manage.py sync_batches``: keep the batch index in step with the Batch API.

Without ``--once`` it runs until SIGTERM or SIGINT: one pass per project, then an interruptible wait
of ``DASHBOARD_SYNC_SECONDS``; a stop request ends the current pass after its current page and
releases the leases. Several copies may run on several machines: a per-project lease
(batches/index/lease.py) lets exactly one of them sync a project at a time. An upstream fault ends
that project's pass with one log line; the next pass resumes (the loop never dies of one).
"""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from batches.index import lease
from batches.conf import conf
from batches.index.sync import PAGE_SIZE, sync_project
from batches.projects import all_projects, get_project

logger = logging.getLogger("batches.sync")


class Command(BaseCommand):
    help = "Sync every project's batches into the local index (one pass per DASHBOARD_SYNC_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Do one pass per project and exit (the backfill runs to the end).")
        parser.add_argument("--project", metavar="SLUG", help="Only this project.")
        parser.add_argument(
            "--backfill-pages", type=int, metavar="N",
            help="Backfill at most N pages of 100 per pass (default: DASHBOARD_SYNC_BACKFILL_PAGES, 50; with --once: all).",
        )
        parser.add_argument("--interval", type=float, metavar="SECONDS", help="Seconds between passes (default DASHBOARD_SYNC_SECONDS).")

    def handle(self, *args, once=False, project=None, backfill_pages=None, interval=None, **options):
        if project:
            selected = get_project(project)
            if selected is None:
                raise CommandError(f"There is no project {project!r}; known: {', '.join(p.slug for p in all_projects())}.")
        self.verbosity = options.get("verbosity", 1)
        self.once = once
        self.stop = threading.Event()
        self.owner = lease.new_owner()
        self.held: set[str] = set()
        if backfill_pages is None and not once:
            backfill_pages = conf().sync_backfill_pages
        interval = float(interval if interval is not None else conf().sync_seconds)
        previous = {}
        if not once:
            # The healthchecks ``sendalerts`` pattern: a signal only sets a flag; the loop notices it
            # between pages and during its wait, finishes cleanly and gives its leases up.
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self.on_signal)
            self.stdout.write(f"sync_batches: instance {self.owner}, a pass every {interval:g}s; stop with SIGTERM or Ctrl-C")
        try:
            while True:
                failures = self.one_round(project, backfill_pages)
                if once:
                    if failures:
                        raise CommandError(f"The pass failed for {', '.join(failures)}; see the log. The next run resumes.")
                    return
                if self.stop.wait(interval):
                    break
        finally:
            for slug in self.held:
                lease.release(slug, self.owner)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.stdout.write("sync_batches: stopped")

    def on_signal(self, signum, frame):
        self.stop.set()

    def one_round(self, only: str | None, backfill_pages: int | None) -> list[str]:
        failures = []
        for project in all_projects():
            if only and project.slug != only:
                continue
            if self.stop.is_set():
                break
            try:
                result = sync_project(
                    project, self.owner, backfill_pages=backfill_pages, page_size=PAGE_SIZE, should_stop=self.stop.is_set
                )
            except Exception:
                # A database hiccup or a bug: say so with the traceback, keep the loop alive.
                logger.exception("sync of project %s failed", project.slug)
                failures.append(project.slug)
                continue
            if not result.skipped:
                self.held.add(project.slug)
            if result.error:
                failures.append(project.slug)
            if self.once and self.verbosity >= 1:
                self.stdout.write(result.summary())
            else:
                logger.info("sync %s", result.summary())
        return failures
