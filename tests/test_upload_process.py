"""Uploads through a real gunicorn worker: what a web process stopped mid-upload leaves on disk, leftovers
of earlier processes swept at start, and the memory a worker keeps after a file with huge lines."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import dashboard_env, run_gunicorn

URL = "/projects/default/batches/new/"
BOUNDARY = "----upload-process-test"


def worker_pid(master_pid: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise TimeoutError("gunicorn started no worker")


def memory_kb(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0])
    return values


def open_files_in(pid: int, folder: Path) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def form_start(csrf: str, token: str) -> bytes:
    fields = {"csrfmiddlewaretoken": csrf, "token": token, "endpoint": "auto", "completion_window": "24h"}
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    )
    return "".join(parts).encode()


def form_end() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def page_tokens(client: httpx.Client) -> tuple[str, str]:
    page = client.get(URL).raise_for_status().text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return csrf, token


@pytest.fixture
def upload_dir(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def test_a_web_process_stopped_during_an_upload_leaves_no_file_and_old_leftovers_are_swept_at_start(tmp_path, upload_dir):
    old = upload_dir / "tmpab12cd34.upload.jsonl"  # what Django's handler left when its process died
    old.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    fresh = upload_dir / "tmpzz98yy76.upload.jsonl"  # maybe another process's upload in progress
    fresh.write_bytes(b"y")
    unrelated = upload_dir / "notes.txt"
    unrelated.write_bytes(b"z")
    os.utime(unrelated, (two_hours_ago, two_hours_ago))
    env = dashboard_env(tmp_path, TMPDIR=str(upload_dir), DASHBOARD_AUTH="none")

    with run_gunicorn(env, "-c", "dashboard/gunicorn_conf.py", "--graceful-timeout", "1") as base:
        with httpx.Client(base_url=base) as client:
            csrf, token = page_tokens(client)
            cookie = client.cookies["csrftoken"]
        assert files_in(upload_dir) == [unrelated.name, fresh.name]
        master = _master_pid(base)
        worker = worker_pid(master)
        head = form_start(csrf, token)
        total = len(head) + 8 * 1024 * 1024 + len(form_end())
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                (f"POST {URL} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: csrftoken={cookie}\r\n"
                 f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {total}\r\n\r\n").encode()
                + head + (b'{"custom_id": "a"}\n' * 100_000)[: 2 * 1024 * 1024]
            )
            deadline = time.monotonic() + 20
            while not open_files_in(worker, upload_dir):  # the worker is writing the upload
                assert time.monotonic() < deadline, "the worker never opened a file for the upload"
                time.sleep(0.02)
            os.kill(master, signal.SIGTERM)  # stop the server mid-upload; the worker is killed after 1 s
            deadline = time.monotonic() + 20
            while Path(f"/proc/{worker}").exists() and "zombie" not in _state(worker):
                assert time.monotonic() < deadline, "the worker did not stop"
                time.sleep(0.05)
    assert files_in(upload_dir) == [unrelated.name, fresh.name]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


def _master_pid(base: str) -> int:
    port = base.rsplit(":", 1)[1]
    # The gunicorn this test started listens on the port: find it among this process's children.
    for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "gunicorn" in cmdline and f"127.0.0.1:{port}" in cmdline:
            return int(child)
    raise LookupError("no gunicorn master among this test's children")


def test_a_file_of_huge_lines_leaves_the_worker_as_small_as_it_was(tmp_path):
    env = dashboard_env(tmp_path, DASHBOARD_AUTH="none")
    with run_gunicorn(env) as base:
        worker = worker_pid(_master_pid(base))
        with httpx.Client(base_url=base, timeout=60) as client:
            csrf, token = page_tokens(client)

            def send(lines: int, id_bytes: int) -> httpx.Response:
                content = b"".join(
                    b'{"custom_id": "%d%s", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n'
                    % (i, b"x" * id_bytes) for i in range(lines)
                )
                fields = {"csrfmiddlewaretoken": csrf, "token": token, "endpoint": "auto", "completion_window": "24h"}
                return client.post(URL, data=fields, files={"file": ("huge.jsonl", content, "application/jsonl")})

            # The same refusal once with short lines: templates loaded, code paths warm.
            assert send(60, 10).status_code == 400
            before = memory_kb(worker)["VmRSS"]
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM from here on
            response = send(60, 1024 * 1024)
        assert response.status_code == 400 and "only POST is allowed" in response.text
        after = memory_kb(worker)
    grown_mb = (after["VmRSS"] - before) / 1024
    peak_mb = (after["VmHWM"] - before) / 1024
    print(f"RSS before {before / 1024:.0f} MB, after {after['VmRSS'] / 1024:.0f} MB, peak {after['VmHWM'] / 1024:.0f} MB")
    assert grown_mb < 8
    assert peak_mb < 24
