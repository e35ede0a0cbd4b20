"""The dashboard's settings (same database, middleware, cache, templates engine) with the floor's URLs:
``DJANGO_SETTINGS_MODULE=bench.floor.settings`` (bench/saturation.py starts a second gunicorn with it)."""

from pathlib import Path

from dashboard.settings import *  # noqa: F401,F403
from dashboard.settings import TEMPLATES

ROOT_URLCONF = "bench.floor.urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], Path(__file__).resolve().parent / "templates"]
