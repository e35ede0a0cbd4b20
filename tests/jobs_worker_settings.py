"""Settings of the task worker process the jobs tests start: the test settings, with the job files in
the test's own storage directory and fast passes."""

import os

from dashboard.test_settings import *  # noqa: F401,F403
from dashboard.test_settings import STORAGES

STORAGES = {**STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                    "OPTIONS": {"location": os.environ["JOBS_TEST_STORAGE"]}}}
