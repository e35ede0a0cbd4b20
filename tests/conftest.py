"""Shared fixtures: a real emulator on loopback, and the dashboard pointed at it."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from emulator import EmulatorServer

# On CI (CI=true) the property tests run a fixed, derandomized set of examples, so a landing never
# depends on a lucky draw; developers' runs keep exploring new inputs (and the database of failures).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

EMULATOR_KEY = "sk-emulator-test"


@pytest.fixture
def emulator():
    """A fresh, seeded Batch API emulator on a free loopback port."""
    server = EmulatorServer(host="127.0.0.1", port=0, api_key=EMULATOR_KEY, speed=1.0, seed=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream(emulator, settings):
    """The dashboard's settings pointed at the emulator (the process-wide client follows them)."""
    settings.OPENAI_BASE_URL = emulator.base_url
    settings.OPENAI_API_KEY = EMULATOR_KEY
    settings.OPENAI_TIMEOUT = 5.0
    return emulator


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
