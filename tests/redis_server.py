"""A throwaway redis-server on a free loopback port, for tests of the shared cache across processes.

``find_redis_server()`` looks for the binary and, when it is missing and we run as root (CI's fresh
Debian 12 machine, where `.ci/run` normally installs it first), installs Debian's ``redis-server``
package once: a file lock makes parallel test processes wait for one install instead of racing apt.
When it cannot be had, it raises with the command that installs it: the tests must not quietly pass
without the Redis they are about.

``run_redis()`` starts ``redis-server`` as our own child process (no persistence, loopback only),
waits until it answers PING, yields its ``redis://`` URL and stops it by its pid.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port, stop_process, wait_for_port

INSTALL_HINT = "sudo apt-get install redis-server  (Debian/Ubuntu; any redis-server >= 6 on PATH works)"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "batch-dashboard-redis-install.lock"
# Debian's package installs /usr/bin/redis-server; /usr/sbin is not on every PATH.
KNOWN_PATHS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server")


def _locate() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return next((path for path in KNOWN_PATHS if os.access(path, os.X_OK)), None)


def _apt_install() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for another apt (e.g. a PostgreSQL install) instead of failing on dpkg's lock.
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=180", "install", "-y", "-qq", "redis-server"]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=180", "update", "-qq"],
                       env=env, capture_output=True, timeout=600)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(
            "installing redis-server with apt-get failed:\n" + (result.stderr or result.stdout)[-2000:]
            + f"\nInstall it yourself: {INSTALL_HINT}"
        )
    return result.stdout


def find_redis_server() -> str:
    """The path of redis-server ($REDIS_SERVER if set), installing Debian's package once when missing
    and running as root."""
    explicit = os.environ.get("REDIS_SERVER")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RuntimeError(f"REDIS_SERVER={explicit} is not an executable redis-server.")
        return explicit
    path = _locate()
    if path:
        return path
    if os.geteuid() != 0:
        raise RuntimeError(
            "The shared-cache tests need a real redis-server and none was found "
            f"(PATH, {', '.join(KNOWN_PATHS)}). Install it, or point $REDIS_SERVER at one: {INSTALL_HINT}"
        )
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer; the others wait, then find it installed
        try:
            path = _locate()
            if path is None:
                _apt_install()
                path = _locate()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if path is None:
        raise RuntimeError(f"apt-get installed redis-server but no binary was found. Install it: {INSTALL_HINT}")
    return path


@contextmanager
def run_redis(work_dir: Path) -> Iterator[str]:
    """Start a private redis-server (no snapshots, no AOF, loopback only); yield its URL; stop it by pid."""
    binary = find_redis_server()
    port = free_port()
    log_path = work_dir / "redis.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(work_dir)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        try:
            wait_for_port(port, process, timeout=15)
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            deadline = time.monotonic() + 5
            while not client.ping():
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not answer PING")
                time.sleep(0.05)
            client.close()
        except (RuntimeError, TimeoutError, redis.RedisError) as err:
            raise RuntimeError(f"redis-server did not start ({err}):\n{log_path.read_text(errors='replace')}") from None
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)
