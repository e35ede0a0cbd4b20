"""Start and stop the processes a benchmark needs: the emulator and the dashboard under gunicorn.

Everything runs on free loopback ports, in a temporary directory (SQLite database, collected static
files), with the real settings module (``dashboard.settings``), and is stopped by the process id we
started, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
API_KEY = "sk-bench"


def python_executable() -> str:
    return str(PYTHON) if PYTHON.exists() else sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (gunicorn's master stops its own workers), SIGKILL if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), read from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) comes after the parenthesised command name, which may contain spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


@dataclass
class Stack:
    """A temp dir with a migrated database and collected static files; emulator and gunicorn in it."""

    workers: int = 2
    threads: int = 4
    speed: float = 1.0
    log: bool = False
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))
    emulator_port: int = 0
    dashboard_port: int = 0
    emulator_proc: subprocess.Popen | None = None
    gunicorn_proc: subprocess.Popen | None = None
    gunicorn_env: dict[str, str] = field(default_factory=dict)
    started_pids: list[int] = field(default_factory=list)  # every process started, workers included

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start_emulator()
            self.prepare_django()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop_dashboard()
        stop_process(self.emulator_proc)
        self.gunicorn_proc = self.emulator_proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _output(self, name: str):
        if self.log:
            return open(self.tmp / f"{name}.log", "ab")
        return subprocess.DEVNULL

    # -- the upstream ----------------------------------------------------------

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def upstream_base_url(self) -> str:
        return f"{self.emulator_url}/v1"

    def start_emulator(self) -> None:
        self.emulator_port = free_port()
        self.emulator_proc = subprocess.Popen(
            [python_executable(), "-m", "emulator", "--host", "127.0.0.1", "--port", str(self.emulator_port),
             "--api-key", API_KEY, "--speed", str(self.speed)],
            cwd=ROOT, stdout=self._output("emulator"), stderr=subprocess.STDOUT,
        )
        self.started_pids.append(self.emulator_proc.pid)
        wait_for_port(self.emulator_port, self.emulator_proc)

    # -- the dashboard ---------------------------------------------------------

    def django_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_", "OPENAI_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            DJANGO_SECRET_KEY="bench-secret-key-" + "x" * 40,
            DJANGO_DEBUG="0",
            DJANGO_SECURE_COOKIES="0",
            DJANGO_STATIC_ROOT=str(self.tmp / "static"),
            DJANGO_LOG_LEVEL="WARNING",
            DASHBOARD_AUTH="none",
            DATABASE_URL=f"sqlite:///{self.tmp / 'db.sqlite3'}",
            OPENAI_API_KEY=API_KEY,
            OPENAI_BASE_URL=self.upstream_base_url,
        )
        env.pop("REDIS_URL", None)
        env.update(overrides)
        return env

    def prepare_django(self) -> None:
        env = self.django_env()
        for args in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            proc = subprocess.run([python_executable(), "manage.py", *args], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start_dashboard(self, **env_overrides: str) -> None:
        """(Re)start gunicorn with the real settings plus ``env_overrides`` on a fresh port."""
        self.stop_dashboard()
        self.dashboard_port = free_port()
        self.gunicorn_env = self.django_env(**env_overrides)
        gunicorn = str(GUNICORN) if GUNICORN.exists() else "gunicorn"
        self.gunicorn_proc = subprocess.Popen(
            [gunicorn, "dashboard.wsgi:application", "--bind", f"127.0.0.1:{self.dashboard_port}",
             "--workers", str(self.workers), "--threads", str(self.threads)],
            cwd=ROOT, env=self.gunicorn_env, stdout=self._output("gunicorn"), stderr=subprocess.STDOUT,
        )
        self.started_pids.append(self.gunicorn_proc.pid)
        wait_for_port(self.dashboard_port, self.gunicorn_proc)
        # The port opens before every worker has booted: wait until all answer.
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        self.started_pids.extend(self.worker_pids())
        with httpx.Client(base_url=self.dashboard_url, timeout=30) as client:
            for _ in range(self.workers * 4):
                client.get("/healthz")

    def stop_dashboard(self) -> None:
        """Stop the gunicorn master; then make sure none of the workers we saw outlives it."""
        if self.gunicorn_proc is None:
            return
        workers = self.worker_pids()
        stop_process(self.gunicorn_proc)
        for pid in workers:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # already gone
            if b"gunicorn" in cmdline:
                os.kill(pid, signal.SIGKILL)
        self.gunicorn_proc = None

    def worker_pids(self) -> list[int]:
        return child_pids(self.gunicorn_proc.pid) if self.gunicorn_proc else []

    def worker_memory(self) -> dict[int, dict[str, int]]:
        return {pid: proc_memory_kb(pid) for pid in self.worker_pids()}
