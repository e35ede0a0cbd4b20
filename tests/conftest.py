"""Shared fixtures: a real emulator on loopback, and the dashboard pointed at it."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings

from emulator import EmulatorServer
from tests.helpers import EMULATOR_ADMIN_KEY, EMULATOR_KEY, RESEARCH_KEY

# On CI (CI=true) the property tests run a fixed, derandomized set of examples, so a landing never
# depends on a lucky draw; developers' runs keep exploring new inputs (and the database of failures).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")



@pytest.fixture(scope="session")
def _emulator_server():
    """One Batch API emulator for the whole run (projects "default" and "research", keyed like the real
    API); each test gets it back in its freshly seeded state."""
    server = EmulatorServer(
        host="127.0.0.1", port=0, api_keys={"default": EMULATOR_KEY, "research": RESEARCH_KEY}, speed=1.0, seed=True,
        admin_keys=[EMULATOR_ADMIN_KEY],  # the Admin API (billed costs): tests/test_costs_emulator.py
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emulator(_emulator_server):
    """The session's emulator, reset to its seeded state: no faults, counters at zero, clock offset 0."""
    _emulator_server.state.reset()
    return _emulator_server


@pytest.fixture
def own_emulator(settings):
    """For a test that needs an emulator of its own (another API key, or a clock that moves only with
    ``state.advance``): ``own_emulator(api_key=..., speed=0.0)`` starts a seeded one, points the
    dashboard's settings at it, and stops it after the test."""
    started = []

    def start(*, api_key: str = EMULATOR_KEY, speed: float = 1.0) -> EmulatorServer:
        server = EmulatorServer(host="127.0.0.1", port=0, api_key=api_key, speed=speed, seed=True)
        server.start()
        started.append(server)
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = api_key
        settings.OPENAI_TIMEOUT = 5.0
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def upstream(emulator, settings):
    """The dashboard's settings pointed at the emulator (the process-wide client follows them)."""
    settings.OPENAI_BASE_URL = emulator.base_url
    settings.OPENAI_API_KEY = EMULATOR_KEY
    settings.OPENAI_TIMEOUT = 5.0
    return emulator


@pytest.fixture
def running_batch(emulator) -> str:
    """The id of a seeded batch of the default project that is really running (in_progress; its
    lifecycle moves with the emulator's clock)."""
    return next(b["id"] for b in emulator.state.list_batches() if b["status"] == "in_progress")


@pytest.fixture
def proxy_mode(settings):
    """Sign-in through the SSO proxy (DASHBOARD_AUTH=proxy). Call it for the headers of an identity:
    ``proxy_mode("ops@example.com", groups=["batch-operators"])``; ``operator_groups=`` also sets
    DASHBOARD_OPERATOR_GROUPS (who may create and cancel)."""
    settings.DASHBOARD_AUTH = "proxy"

    def identity(email: str = "ops@example.com", *, groups=(), operator_groups=None) -> dict[str, str]:
        if operator_groups is not None:
            settings.DASHBOARD_OPERATOR_GROUPS = list(operator_groups)
        headers = {"X-Forwarded-Email": email}
        if groups:
            headers["X-Forwarded-Groups"] = ",".join(groups)
        return headers

    return identity


@pytest.fixture
def immediate_tasks(settings):
    """Tasks run at once, in the test (Django's ImmediateBackend); the test's own backend after it."""
    from notify_helpers import IMMEDIATE, task_backend

    with task_backend(settings, IMMEDIATE):
        yield


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from batches.cache import RECENT_READS
    from batches.index.records import BATCHES_MADE
    from batches.upstream import breaker

    cache.clear()
    breaker.reset()  # a breaker one test opened must not refuse the next test's calls
    # Each test's database starts again from empty: a row id and sync time can come back with other data.
    BATCHES_MADE.clear()
    RECENT_READS.clear()
    yield
    cache.clear()
    RECENT_READS.clear()
    breaker.reset()


@pytest.fixture
def write_projects(tmp_path, monkeypatch, settings):
    """Point DASHBOARD_PROJECTS_FILE at a TOML text; ``env`` sets the variables it names."""

    def write(text: str, **env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / f"projects-{len(list(tmp_path.glob('projects-*.toml')))}.toml"
        path.write_text(text)
        settings.DASHBOARD_PROJECTS_FILE = str(path)
        return path

    return write


@pytest.fixture
def two_projects(upstream, write_projects, settings):
    """The emulator's two projects, "default" (seen by everyone) and "research" (its viewers and
    operators only), signed in through the SSO proxy."""
    settings.DASHBOARD_AUTH = "proxy"
    write_projects(
        f"""
[projects.default]
name = "Production"
api_key_env = "TEST_KEY_DEFAULT"
base_url = "{upstream.base_url}"

[projects.research]
name = "Research"
api_key_env = "TEST_KEY_RESEARCH"
base_url = "{upstream.base_url}"
viewer_groups = ["research"]
operator_groups = ["research-oncall"]
""",
        TEST_KEY_DEFAULT=EMULATOR_KEY,
        TEST_KEY_RESEARCH=RESEARCH_KEY,
    )
    return upstream
