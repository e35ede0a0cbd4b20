"""Settings for the test suite: the production settings, read with a test environment.

Tests talk only to loopback: the upstream is the emulator (or an httpx mock transport) per test.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DASHBOARD_AUTH", "none")
os.environ.setdefault("OPENAI_API_KEY", "sk-test")
os.environ.setdefault("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

from .settings import *  # noqa: E402,F401,F403

# Plain static storage in tests: no collectstatic needed for the manifest.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Serve static files from the finders in tests (no collectstatic step for unit tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's shared-cache memory database: several threads and processes (leases,
    # claims, the task worker) then wait for each other's writes (busy timeout, WAL) as in production,
    # instead of failing at once with "database table is locked".
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"dashboard-test-{os.getpid()}.sqlite3")}  # noqa: F405
