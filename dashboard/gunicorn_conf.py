"""gunicorn settings for the dashboard: ``gunicorn -c dashboard/gunicorn_conf.py dashboard.wsgi:application``.

Only what the metrics need; bind address, workers and threads stay on the command line (or in
``GUNICORN_CMD_ARGS``), so this file works for every deployment.

prometheus-client's multiprocess mode: every worker writes its metric values to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` merges them, so a scrape sees the whole server whichever
worker answers it. The directory must be empty when the server starts (values of a previous run would
otherwise be added in again): when the variable is set (systemd: a ``RuntimeDirectory``), its ``*.db``
files are removed here, before any worker starts; when it is unset, a fresh temporary directory is made
and removed again when gunicorn exits. This module sets the variable before any worker imports
prometheus-client, which decides its mode at import time.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

_made_here = None
_directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
if _directory:
    os.makedirs(_directory, exist_ok=True)
    for _stale in glob.glob(os.path.join(_directory, "*.db")):
        os.remove(_stale)
else:
    _directory = _made_here = tempfile.mkdtemp(prefix="batch-dashboard-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _directory

# Only now: prometheus-client reads PROMETHEUS_MULTIPROC_DIR when it is first imported.
from prometheus_client import multiprocess  # noqa: E402


def child_exit(server, worker):
    """A worker is gone: drop its live-gauge files (counters and histograms stay summed in)."""
    multiprocess.mark_process_dead(worker.pid, _directory)


def on_exit(server):
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
