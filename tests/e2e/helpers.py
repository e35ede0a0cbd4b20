"""What the end-to-end tests share besides fixtures: the repository's paths, the emulator's key, and
running the dashboard the real way (gunicorn and the emulator as subprocesses on free loopback ports,
stopped by the pids we started)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
EMULATOR_KEY = "sk-emulator-e2e"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Run by DashboardServer.index in a process of its own, with the dashboard's database.
INDEX_SCRIPT = """
import json, sys
import django
django.setup()
from batches.index.store import upsert_batches
from batches.models import SyncState
from batches.upstream import Batch
from django.utils import timezone
for slug, batches in json.load(sys.stdin).items():
    upsert_batches(slug, [Batch.from_api(b) for b in batches])
    SyncState.objects.update_or_create(project=slug, defaults={"last_success": timezone.now(), "backfill_done": True})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL if it does not exit."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class DashboardServer:
    url: str  # e.g. http://127.0.0.1:40123 (no trailing slash)
    emulator_url: str  # e.g. http://127.0.0.1:40124 (the upstream is emulator_url + "/v1")
    emulator_api_key: str
    logs: dict[str, Path] = field(default_factory=dict)

    def _call(self, method: str, path: str, body: object | None = None, *, api: bool = False) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.emulator_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if api:
            request.add_header("Authorization", f"Bearer {self.emulator_api_key}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (batches progress, cancels finish)."""
        self._call("POST", "/_emulator/advance", {"seconds": seconds})

    def stats(self) -> dict:
        """{"counts": {"GET /v1/batches": n, ...}, "total": n, "connections": n}"""
        return self._call("GET", "/_emulator/stats")

    def reset_counts(self) -> None:
        self._call("POST", "/_emulator/reset-counts", {})

    def add_fault(self, **fault) -> None:
        """See emulator EmulatorState.inject_fault: route, method, status, body, headers, delay, times..."""
        self._call("POST", "/_emulator/faults", fault)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")

    def upstream(self, path: str) -> dict:
        """A GET against the emulator's API, e.g. upstream("/v1/batches?limit=100")."""
        return self._call("GET", path, api=True)

    def index(self, listed: dict[str, list[dict]]) -> None:
        """Write these batches ({project slug: the API's batch objects}) into the dashboard's index, as
        a sync pass would, and mark each project's backfill done."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_", "DATABASE_", "OPENAI_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG="1", DJANGO_SECRET_KEY="e2e-index",
            DATABASE_URL=f"sqlite:///{self.logs['gunicorn'].parent / 'db.sqlite3'}",
        )
        subprocess.run([sys.executable, "-c", INDEX_SCRIPT], input=json.dumps(listed), text=True, cwd=REPO, env=env,
                       check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def start_dashboard(
    tmp_dir: Path, extra_env: dict[str, str] | None = None, projects: dict[str, str] | None = None,
    emulator_args: tuple[str, ...] = (),
    projects_toml: Callable[[str], str] | None = None,
) -> Iterator[DashboardServer]:
    """Run the emulator and the dashboard under gunicorn, as `scripts/run` does, on free loopback
    ports; stop both (by pid) on exit. ``extra_env`` overrides the dashboard's environment.
    ``projects`` ({slug: key}) gives the emulator one project per key and the dashboard a projects
    file naming them, in that order (the first is the default). ``emulator_args`` are added to the
    emulator's command line (``--anthropic-key claude=…`` for another provider's project), and
    ``projects_toml`` (the emulator's root URL -> the text of a projects file) writes the dashboard's
    projects file itself, for projects of other providers."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    emulator_port, web_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DASHBOARD_", "OPENAI_", "REDIS_", "DATABASE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DJANGO_SECRET_KEY="e2e-secret-key-not-for-production-0123456789abcdefghij",
        DJANGO_DEBUG="0",
        DJANGO_SECURE_COOKIES="0",
        DJANGO_STATIC_ROOT=str(tmp_dir / "static"),
        DATABASE_URL=f"sqlite:///{tmp_dir / 'db.sqlite3'}",
        DASHBOARD_AUTH="none",
        DASHBOARD_EMULATOR="1",
        DASHBOARD_POLL_SECONDS="1",
        OPENAI_API_KEY=EMULATOR_KEY,
        OPENAI_BASE_URL=f"{emulator_url}/v1",
    )
    emulator_keys = ["--api-key", EMULATOR_KEY]
    if projects:
        emulator_keys = [arg for slug, key in projects.items() for arg in ("--api-key", f"{slug}={key}")]
        lines = []
        for slug, key in projects.items():
            env[f"E2E_KEY_{slug.upper().replace('-', '_')}"] = key
            lines += [f"[projects.{slug}]", f'name = "{slug.title()}"',
                      f'api_key_env = "E2E_KEY_{slug.upper().replace("-", "_")}"', f'base_url = "{emulator_url}/v1"', ""]
        (tmp_dir / "projects.toml").write_text("\n".join(lines))
        env["DASHBOARD_PROJECTS_FILE"] = str(tmp_dir / "projects.toml")
    if projects_toml is not None:
        (tmp_dir / "projects.toml").write_text(projects_toml(emulator_url))
        env["DASHBOARD_PROJECTS_FILE"] = str(tmp_dir / "projects.toml")
    env.update(extra_env or {})
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
        subprocess.run(
            [python, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True, timeout=120
        )

    logs = {"emulator": tmp_dir / "emulator.log", "gunicorn": tmp_dir / "gunicorn.log"}
    processes: list[subprocess.Popen] = []
    try:
        with logs["emulator"].open("wb") as out:
            emulator = subprocess.Popen(
                [python, "-m", "emulator", "--host", "127.0.0.1", "--port", str(emulator_port),
                 *emulator_keys, *emulator_args, "--speed", "1"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        processes.append(emulator)
        wait_for_http(f"{emulator_url}/_emulator/stats", emulator, logs["emulator"])
        gunicorn = str(Path(python).with_name("gunicorn"))
        with logs["gunicorn"].open("wb") as out:
            web = subprocess.Popen(
                [gunicorn, "dashboard.wsgi:application", "--bind", f"127.0.0.1:{web_port}",
                 "--workers", "1", "--threads", "8", "--access-logfile", "-"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        processes.append(web)
        url = f"http://127.0.0.1:{web_port}"
        wait_for_http(f"{url}/healthz", web, logs["gunicorn"])
        yield DashboardServer(url=url, emulator_url=emulator_url, emulator_api_key=EMULATOR_KEY, logs=logs)
    finally:
        for process in reversed(processes):
            stop(process)
