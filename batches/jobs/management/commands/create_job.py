"""``manage.py create_job --project SLUG [--name NAME] FILE``: a job from a file on the server (big
files need not go through a browser). Prints the job page's path as the last line, or exits non-zero
with the problems and their line numbers (nothing stored, nothing sent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from batches.jobs import services
from batches.jobs.storage import READ_BYTES
from batches.projects import all_projects, get_project


class Command(BaseCommand):
    help = "Create a job from a JSONL file of any size; prints the job page's path."

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="The JSONL input file (one request per line).")
        parser.add_argument("--project", required=True, metavar="SLUG")
        parser.add_argument("--name", default="", help="A name for the job (default: its number of requests).")
        parser.add_argument("--max-attempts", type=int, default=services.DEFAULT_MAX_ATTEMPTS, metavar="N",
                            help="Attempts per request for retriable failures (default 3).")
        parser.add_argument("--actor", default="manage.py create_job", help="Who the audit trail names.")

    def handle(self, *args, file, project, name, max_attempts, actor, **options):
        selected = get_project(project)
        if selected is None:
            raise CommandError(f"There is no project {project!r}; known: {', '.join(p.slug for p in all_projects())}.")
        if not 1 <= max_attempts <= 10:
            raise CommandError("--max-attempts must be between 1 and 10.")
        try:
            handle = open(file, "rb")
        except OSError as err:
            raise CommandError(f"{file} cannot be read: {err.strerror or err}.") from err
        with handle:
            result = services.ingest_blocks(selected, iter(lambda: handle.read(READ_BYTES), b""))
        if not result.ok:
            for error in result.errors:
                self.stderr.write(error.text)
            if result.more_errors:
                self.stderr.write(f"… and {result.more_errors:,} more problem(s).")
            raise CommandError(f"{file}: {result.error_count:,} problem(s); no job was created and nothing was sent.")
        try:
            job = services.create_job(selected, result, name=name or file.rsplit("/", 1)[-1], actor=actor,
                                      max_attempts=max_attempts)
        except services.JobRefused as err:  # the project's budget: nothing was stored or sent
            raise CommandError(str(err)) from err
        self.stdout.write(f"Job {job.pk}: {job.total_requests:,} requests in {job.chunks.count():,} chunk(s).")
        self.stdout.write(reverse("batches:job_detail", args=[selected.slug, job.pk]))
