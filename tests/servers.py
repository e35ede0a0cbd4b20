"""Run the dashboard in a real gunicorn on a free loopback port, with the environment a test chooses.

For tests that need what only a real server shows (gunicorn's header handling, a real browser login,
settings read at start-up). The database is a fresh SQLite file in the test's tmp_path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a server this test started, by its own handle (never by name): TERM, then KILL."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def dashboard_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A production-like environment (DEBUG off) on a throwaway database; overrides win."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DASHBOARD_", "OPENAI_", "OIDC_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
            "DJANGO_SECRET_KEY": "gunicorn-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.sqlite3'}",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    env.update(overrides)
    return env


@contextmanager
def run_gunicorn(env: dict[str, str], *extra_args: str) -> Iterator[str]:
    """Migrate (and collect static files when DJANGO_STATIC_ROOT is set), start gunicorn (1 worker),
    yield its base URL, stop it by its pid."""
    commands = [["migrate", "--noinput", "-v", "0"]]
    if env.get("DJANGO_STATIC_ROOT"):
        commands.append(["collectstatic", "--noinput", "-v", "0"])
    for command in commands:
        subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", *command],
            cwd=REPO, env=env, check=True, capture_output=True, timeout=120,
        )
    port = free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "4", "--timeout", "30", *extra_args],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(port, process)
        except (RuntimeError, TimeoutError):
            log.seek(0)
            raise RuntimeError("gunicorn did not start:\n" + log.read().decode(errors="replace")) from None
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()
